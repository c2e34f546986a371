"""The sources of the collections: add, list, show and remove them (the `sources` table,
app/store/sources.py). What a sync does is in ingest/sources/sync.py."""

from __future__ import annotations

import builtins
import re
import shutil
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.db import Database
from app.store.models import utcnow
from app.store.sources import Source, SourceLease
from ingest.sources import KINDS
from ingest.sources.base import SourceKind, SyncContext
from ingest.sources.cron import Cron, CronError, next_run

NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}")
COLLECTION = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,61}[a-zA-Z0-9]")


class SourceProblem(ValueError):
    """A source that cannot be added as asked, or does not exist; the message says why."""


@dataclass(frozen=True)
class SourceView:
    """A source as `sources list/show` and the admin API present it."""

    id: str
    name: str
    collection: str
    kind: str
    config: dict[str, Any]
    interval_s: int
    cron: str | None
    enabled: bool
    created_at: datetime
    next_run_at: datetime | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_status: str | None
    last_error: str | None
    last_counts: dict[str, Any]
    last_findings: int
    last_seconds: float | None
    last_run_id: int | None
    last_success_at: datetime | None
    state: dict[str, Any]  # the kind's: the commit last ingested

    @classmethod
    def of(cls, row: Source, session: Session | None = None) -> SourceView:
        """The row as shown; a sync recorded as running whose collection lease is free
        or expired was killed: shown as interrupted (the next sync takes it over)."""
        view = cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})
        if session is not None and row.last_status == "running":
            lease = session.get(SourceLease, row.collection)
            if lease is None or lease.until is None or lease.until < utcnow():
                view = replace(view, last_status="interrupted")
        return view

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes in ISO 8601."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


class Sources:
    """CRUD over the sources table."""

    def __init__(self, db: Database, data_dir: Path) -> None:
        self.db = db
        self.data_dir = data_dir

    def workdir(self, source_id: str) -> Path:
        """The source's own folder: clones and mirrors live here."""
        return self.data_dir / "sources" / source_id

    def add(
        self,
        name: str,
        collection: str,
        kind: str,
        config: dict[str, Any],
        *,
        interval_s: int = 0,
        cron: str | None = None,
    ) -> SourceView:
        """Register a source (SourceProblem: bad name, kind, config or schedule, or name
        taken). With an interval it runs at once, then every interval; with a cron
        expression at its next time."""
        if not NAME.fullmatch(name):
            raise SourceProblem(f"invalid source name {name!r}: 1-63 of [a-zA-Z0-9._-]")
        if not COLLECTION.fullmatch(collection):
            raise SourceProblem(f"invalid collection name {collection!r}: 3-63 of [a-zA-Z0-9._-]")
        cron = self.check_schedule(interval_s, cron)
        checked = self.check_config(kind, config)
        first_run = utcnow() if interval_s else None
        with self.db.session() as session:
            if session.scalar(select(Source.id).where(Source.name == name)):
                raise SourceProblem(f"a source named {name!r} exists already")
            row = Source(
                name=name,
                collection=collection,
                kind=kind,
                config=checked,
                interval_s=interval_s,
                cron=cron,
                next_run_at=next_run(0, cron, utcnow()) if cron else first_run,
            )
            session.add(row)
            session.flush()
            return SourceView.of(row)

    @staticmethod
    def check_schedule(interval_s: int, cron: str | None) -> str | None:
        """The cron expression normalised (None: none), or SourceProblem saying what is
        wrong with the schedule."""
        if interval_s < 0:
            raise SourceProblem("the interval cannot be negative")
        if cron is None or not cron.strip():
            return None
        if interval_s:
            raise SourceProblem("a schedule is an interval or a cron expression, not both")
        try:
            return Cron.parse(cron).text
        except CronError as exc:
            raise SourceProblem(f"invalid cron expression: {exc}") from None

    @staticmethod
    def check_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
        """The config as the kind validates it, JSON-ready (SourceProblem if wrong)."""
        if kind not in KINDS:
            raise SourceProblem(f"unknown kind {kind!r}: one of {', '.join(sorted(KINDS))}")
        try:
            return KINDS[kind].validate(config).model_dump(mode="json")
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or kind}: {e['msg']}" for e in exc.errors()
            )
            raise SourceProblem(f"invalid {kind} source: {problems}") from None

    def list(self) -> list[SourceView]:
        with self.db.session() as session:
            rows = session.scalars(select(Source).order_by(Source.collection, Source.name))
            return [SourceView.of(r, session) for r in rows]

    def get(self, name_or_id: str) -> SourceView:
        """A source by name or id (SourceProblem when there is none)."""
        with self.db.session() as session:
            row = session.scalar(
                select(Source).where((Source.name == name_or_id) | (Source.id == name_or_id))
            )
            if row is None:
                raise SourceProblem(f"no source {name_or_id!r}")
            return SourceView.of(row, session)

    def set_schedule(
        self, name_or_id: str, interval_s: int, enabled: bool = True, cron: str | None = None
    ) -> SourceView:
        """Change how often a source syncs (0 and no cron: on demand only); the next run
        follows: an interval counts from the last sync, a cron expression from now."""
        source = self.get(name_or_id)
        cron = self.check_schedule(interval_s, cron)
        with self.db.session() as session:
            row = session.get_one(Source, source.id)
            row.interval_s, row.cron, row.enabled = interval_s, cron, enabled
            base = utcnow() if cron else row.last_finished_at or utcnow()
            row.next_run_at = next_run(interval_s, cron, base)
            return SourceView.of(row)

    def remove(self, name_or_id: str) -> SourceView:
        """Delete a source's row and its folder (its documents: ingest/sources/sync.py)."""
        source = self.get(name_or_id)
        with self.db.session() as session:
            session.delete(session.get_one(Source, source.id))
        shutil.rmtree(self.workdir(source.id), ignore_errors=True)
        return source

    def due(self, now: datetime | None = None) -> builtins.list[SourceView]:
        """Enabled sources with a schedule whose next run has come, oldest due first."""
        now = now or utcnow()
        with self.db.session() as session:
            rows = session.scalars(
                select(Source)
                .where(
                    Source.enabled.is_(True),
                    (Source.interval_s > 0) | Source.cron.is_not(None),
                    Source.next_run_at.is_not(None),
                    Source.next_run_at <= now,
                )
                .order_by(Source.next_run_at)
            )
            return [SourceView.of(r) for r in rows]

    def kind_of(self, source: SourceView, context: SyncContext) -> SourceKind:
        """The source's kind, built with its config."""
        kind = KINDS[source.kind]
        return kind(kind.validate(source.config), context)
