"""One sync of one source: take its collection's lease, fetch, ingest, record.

The lease (app/store/sources.py) makes exactly one process sync a collection at a time,
whichever replica or CronJob asks; it is renewed while the sync runs and released at
the end, or runs out after a kill. The source's state (the commit ingested) is written
only after the ingest finished, and the pipeline converges from wherever a kill left
it, so an interrupted sync repeats at most what was under way: nothing lost or doubled.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from app.settings import Settings
from app.store.models import utcnow
from app.store.sources import Leases, Source
from ingest.mass_change import MassChange
from ingest.pipeline import Ingestor
from ingest.sources.base import SourceError, SyncContext
from ingest.sources.cron import next_run
from ingest.sources.registry import Sources, SourceView
from ingest.summary import IngestSummary

log = logging.getLogger(__name__)


def owner_id() -> str:
    """Who holds a lease: host, process and a random part (a restarted pod differs)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class SyncResult:
    """How one sync went: status is completed, partial, refused, failed or busy (another
    process holds the collection's lease; nothing was done)."""

    source: str
    status: str
    note: str = ""
    error: str | None = None
    summary: IngestSummary | None = None


class _Heartbeat:
    """Renews a lease every third of its length until stopped."""

    def __init__(self, leases: Leases, collection: str, owner: str, seconds: float) -> None:
        self.stopped = threading.Event()
        self.lost = False

        def beat() -> None:
            while not self.stopped.wait(seconds / 3):
                if not leases.renew(collection, owner, seconds):
                    self.lost = True
                    log.warning("lost the sync lease of %s", collection)
                    return

        self.thread = threading.Thread(target=beat, name=f"lease-{collection}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


class Syncer:
    """Syncs sources into their collections with one ingestor (one vector-store writer)."""

    def __init__(self, settings: Settings, ingestor: Ingestor, owner: str | None = None) -> None:
        self.settings = settings
        self.ingestor = ingestor
        self.db = ingestor.db
        self.sources = Sources(self.db, settings.data_dir)
        self.leases = Leases(self.db)
        self.owner = owner or owner_id()

    def context(self, source: SourceView) -> SyncContext:
        s = self.settings.sources
        return SyncContext(
            workdir=self.sources.workdir(source.id),
            credentials=dict(s.credentials),
            ssh_keys=dict(s.ssh_keys),
            exclude=tuple(self.settings.ingest.exclude),
            allow_private_addresses=s.allow_private_addresses,
            user_agent=s.user_agent,
            request_timeout_s=s.request_timeout_s,
            git_timeout_s=s.git_timeout_s,
        )

    def sync_due(self) -> list[SyncResult]:
        """Every due source, one after another (a busy collection's wait for next time)."""
        return [self.sync(s.id, due_only=True) for s in self.sources.due()]

    def sync(
        self, name_or_id: str, *, allow_mass_change: bool = False, due_only: bool = False
    ) -> SyncResult:
        """Sync one source now (SourceProblem if there is none)."""
        source = self.sources.get(name_or_id)
        lease_s = self.settings.sources.lease_s
        if not self.leases.take(source.collection, self.owner, lease_s):
            holder, _ = self.leases.holder(source.collection)
            return SyncResult(source.name, "busy", f"collection synced by {holder}")
        heartbeat = _Heartbeat(self.leases, source.collection, self.owner, lease_s)
        try:
            source = self.sources.get(source.id)  # as it is now we hold the lease
            if due_only and source.id not in {s.id for s in self.sources.due()}:
                return SyncResult(source.name, "busy", "synced meanwhile by another process")
            return self._sync(source, allow_mass_change)
        finally:
            heartbeat.stop()
            self.leases.release(source.collection, self.owner)

    def _sync(self, source: SourceView, allow_mass_change: bool) -> SyncResult:
        began, started = time.perf_counter(), utcnow()
        self._record(source, last_started_at=started, last_status="running")
        context = self.context(source)
        context.workdir.mkdir(parents=True, exist_ok=True)
        result = SyncResult(source.name, "failed")
        counts: dict[str, int] = {}
        findings = 0
        state = None
        try:
            kind = self.sources.kind_of(source, context)
            fetched = kind.fetch(dict(source.state))
            result.note = fetched.note
            summary = self.ingestor.run(
                [fetched.root],
                source.collection,
                listing=fetched.listing,
                allow_mass_change=allow_mass_change,
            )
            result.summary, result.status = summary, summary.status
            counts = {
                "added": summary.new,
                "changed": summary.changed,
                "removed": summary.deleted,
                "unchanged": summary.unchanged,
                "failed": summary.failed,
                "quarantined": summary.quarantined,
            }
            findings = len(summary.findings)
            state = fetched.state
        except SourceError as exc:
            result.error = str(exc)
        except MassChange as exc:
            result.status, result.error = "refused", str(exc)
        except Exception as exc:  # one source's failure must not stop the others
            log.exception("sync of source %s failed", source.name)
            result.error = f"{type(exc).__name__}: {exc}"
        finished = utcnow()
        values: dict[str, object] = {
            "last_finished_at": finished,
            "last_status": result.status,
            "last_error": result.error,
            "last_counts": counts,
            "last_findings": findings,
            "last_seconds": round(time.perf_counter() - began, 3),
            "last_run_id": result.summary.run_id if result.summary else None,
            "next_run_at": next_run(source.interval_s, source.cron, finished),
        }
        if state is not None:
            values |= {"state": state, "last_success_at": finished}
        self._record(source, **values)
        return result

    def _record(self, source: SourceView, **values: object) -> None:
        with self.db.session() as session:
            row = session.get(Source, source.id)
            if row is None:  # removed while it synced
                return
            for name, value in values.items():
                setattr(row, name, value)

    def remove(self, name_or_id: str, *, keep_documents: bool = False) -> tuple[SourceView, int]:
        """Remove a source and (unless kept) the documents it brought; how many went."""
        from ingest.index_writer import IndexWriter

        source = self.sources.get(name_or_id)
        removed = 0
        if not keep_documents:
            root = self.sources.workdir(source.id).resolve()
            if source.kind == "folder":
                root = Path(source.config["path"]).expanduser().resolve()
            index = IndexWriter(self.db, self.ingestor.vectors, source.collection)
            for path, doc in index.stored_documents().items():
                if Path(path).is_relative_to(root):
                    index.remove(doc)
                    removed += 1
        return self.sources.remove(source.id), removed
