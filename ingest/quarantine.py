"""Quarantined files: those a run kept out of the index as exact duplicates, and what an
admin does with them.

Nothing new is stored: a quarantine is the `duplicate` finding of a run (ingest_issues)
and its file, still on disk. A file is quarantined while its latest such finding stands:
it is not indexed since, its file is still there, and no admin dropped that finding. An
admin may **release** it (ingest it anyway: a run of that one file that lets the
duplicate in, its finding kept as a warning) or **drop** it (forget it: an uploaded copy,
which docchat keeps under <data_dir>/uploads, is deleted; a file of a folder or source
is left where it is, and listed again only if a later run quarantines it again). Each is
an audit event with who did it and why (app/store/audit.py), which is also how a drop is
remembered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from app.store import audit
from app.store.db import Database
from app.store.models import AuditEvent, Document, IngestFinding, IngestRun
from ingest.discovery import SourceFile
from ingest.pipeline import Ingestor, Listing, ProgressCallback
from ingest.summary import IngestSummary

RELEASE = "quarantine.release"
DROP = "quarantine.drop"


class NotQuarantined(LookupError):
    """No such finding, or its file is no longer quarantined."""

    def __init__(self, finding: int) -> None:
        super().__init__(f"finding {finding} is not a file in quarantine (see the list)")
        self.finding = finding


@dataclass(frozen=True)
class Quarantined:
    """A file kept out of the index, and why."""

    finding: int  # the id of its latest `duplicate` finding: how routes name it
    collection: str
    source: str  # as citations and findings name it
    path: Path  # the file itself
    run_id: int
    at: datetime  # when that run started
    reason: str  # "exact duplicate of ..."
    uploaded: bool  # a copy docchat keeps (an upload): dropping it deletes the copy

    @property
    def label(self) -> str:
        """What the audit trail names it by."""
        return f"{self.collection}/{self.source}"


def _file_of(roots: str, source: str) -> Path | None:
    """The file a finding's source names, from its run's roots: a folder walk names a
    file relative to the folder above the root it was found under (discovery.py). A
    source's page or commit link names no file: None, as for a file that is gone."""
    for root in (Path(r) for r in roots.splitlines() if r):
        path = root.parent / source
        if (path == root or path.is_relative_to(root)) and path.is_file():
            return path
    return None


def quarantined(db: Database, uploads: Path, collection: str | None = None) -> list[Quarantined]:
    """The files in quarantine now (of one collection, or all), newest first."""
    query = (
        select(IngestFinding, IngestRun)
        .join(IngestRun, IngestFinding.run_id == IngestRun.id)
        .where(IngestFinding.check == "duplicate", IngestFinding.severity == "error")
        .where(IngestRun.dry_run.is_(False))
        .order_by(IngestFinding.id.desc())
    )
    if collection is not None:
        query = query.where(IngestRun.collection == collection)
    with db.session() as session:
        rows = session.execute(query).all()
        dropped = {
            (e.detail or {}).get("finding")
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == DROP, AuditEvent.outcome == "ok")
            )
        }
        indexed = {
            (d.collection, d.path)
            for d in session.scalars(select(Document).where(Document.status == "indexed"))
        }
    found: list[Quarantined] = []
    seen: set[tuple[str, str]] = set()
    for finding, run in rows:
        key = (run.collection, finding.path)
        if key in seen:  # an older finding of the same file: the latest one stands
            continue
        seen.add(key)
        path = _file_of(run.roots, finding.path)
        if finding.id in dropped or path is None or (run.collection, str(path)) in indexed:
            continue
        found.append(
            Quarantined(
                finding.id,
                run.collection,
                finding.path,
                path,
                run.id,
                run.started_at,
                finding.reason,
                path.resolve().is_relative_to(uploads.resolve()),
            )
        )
    return found


def find(db: Database, uploads: Path, finding: int) -> Quarantined:
    """The quarantined file of this finding; NotQuarantined if it is not (or no longer)."""
    for item in quarantined(db, uploads):
        if item.finding == finding:
            return item
    raise NotQuarantined(finding)


def release(
    db: Database,
    ingestor: Ingestor,
    item: Quarantined,
    actor: str,
    why: str,
    progress: ProgressCallback | None = None,
) -> IngestSummary:
    """Index the file in spite of the duplicate; the run and the event record it."""
    try:
        # That file alone (the run touches nothing else), under the name it had.
        path = item.path.resolve()
        summary = ingestor.run(
            [path],
            item.collection,
            progress=progress,
            listing=Listing([SourceFile(path, item.source)]),
            release=frozenset({path}),
        )
    except Exception as exc:
        audit.record_in(db, actor, RELEASE, item.label, "failed", str(exc)[:500], _detail(item))
        raise
    detail = {**_detail(item), "release_run": summary.run_id, "chunks": summary.chunks_written}
    audit.record_in(db, actor, RELEASE, item.label, "ok", why, detail)
    return summary


def drop(db: Database, item: Quarantined, actor: str, why: str) -> bool:
    """Forget the file: its uploaded copy deleted (True), or only taken off the list."""
    deleted = False
    if item.uploaded:
        item.path.unlink(missing_ok=True)
        deleted = True
    audit.record_in(db, actor, DROP, item.label, "ok", why, {**_detail(item), "deleted": deleted})
    return deleted


def _detail(item: Quarantined) -> dict[str, object]:
    return {"finding": item.finding, "run": item.run_id, "collection": item.collection}
