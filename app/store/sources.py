"""Sources of a collection (a folder, a git repository, a website) and their sync
leases. Declared on the same Base as every other table; importing this module is what
puts them in its metadata (app/store/migrations/env.py does).

A sync runs under the lease of its collection's row in `source_leases`: taken by one
atomic UPDATE that matches only when the lease is free or expired, renewed while the
sync runs, released at its end. On PostgreSQL the UPDATE's row lock makes a second
replica's UPDATE wait and then re-check the condition, so exactly one wins; SQLite runs
one writer at a time. One lease per collection: one sync at a time per collection, and
a killed holder's lease runs out so another replica can take over.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from app.store.db import Database
from app.store.models import Base, new_id, utcnow


class Source(Base):
    """Where a collection's documents come from, how often it is synced, and how its
    last sync went."""

    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    # The collection's name, as `docchat ingest --collection` takes it.
    collection: Mapped[str] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # folder, git, website (ingest/sources)
    # The kind's settings, validated by its model; never a credential (those are named
    # here and resolved from the secret settings, sources.credentials).
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Seconds between syncs; 0: on demand only (unless cron is set).
    interval_s: Mapped[int] = mapped_column(Integer, default=0)
    # A cron expression (ingest/sources/cron.py) the syncs follow instead of interval_s.
    cron: Mapped[str | None] = mapped_column(String(120), default=None)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_run_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    # What the kind carries from sync to sync (the commit last ingested), written only
    # after a sync's ingest finished: a killed sync starts again from the previous one.
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_started_at: Mapped[datetime | None] = mapped_column(default=None)
    last_finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # running, completed, partial, refused (mass change), failed
    last_status: Mapped[str | None] = mapped_column(String(16), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    # Files or pages added, changed, removed, unchanged, failed, quarantined.
    last_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_findings: Mapped[int] = mapped_column(Integer, default=0)
    last_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    last_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("ingest_runs.id", ondelete="SET NULL"), default=None
    )
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)


class SourceLease(Base):
    """Who syncs a collection's sources now, until when (see the module's docstring)."""

    __tablename__ = "source_leases"

    collection: Mapped[str] = mapped_column(String(63), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(100), default=None)
    until: Mapped[datetime | None] = mapped_column(default=None)


class Leases:
    """Take, renew and release the per-collection sync leases."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def take(self, collection: str, owner: str, seconds: float) -> bool:
        """Whether `owner` now holds the collection's lease for `seconds`."""
        self._ensure_row(collection)
        now = utcnow()
        with self.db.session() as session:
            result = session.execute(
                update(SourceLease)
                .where(
                    SourceLease.collection == collection,
                    (SourceLease.until.is_(None)) | (SourceLease.until < now),
                )
                .values(owner=owner, until=now + timedelta(seconds=seconds))
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0) == 1)

    def renew(self, collection: str, owner: str, seconds: float) -> bool:
        """Extend a lease still held by `owner`; False when it was lost (expired and
        taken by another)."""
        with self.db.session() as session:
            result = session.execute(
                update(SourceLease)
                .where(SourceLease.collection == collection, SourceLease.owner == owner)
                .values(until=utcnow() + timedelta(seconds=seconds))
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0) == 1)

    def release(self, collection: str, owner: str) -> None:
        """Free the lease if `owner` holds it."""
        with self.db.session() as session:
            session.execute(
                update(SourceLease)
                .where(SourceLease.collection == collection, SourceLease.owner == owner)
                .values(owner=None, until=None)
                .execution_options(synchronize_session=False)
            )

    def holder(self, collection: str) -> tuple[str | None, datetime | None]:
        """Who holds the collection's lease and until when (None, None: nobody)."""
        with self.db.session() as session:
            row = session.get(SourceLease, collection)
            if row is None or row.until is None or row.until < utcnow():
                return None, None
            return row.owner, row.until

    def _ensure_row(self, collection: str) -> None:
        """The collection's lease row, inserted once (a concurrent insert is ignored)."""
        with self.db.session() as session:
            if session.scalar(
                select(SourceLease.collection).where(SourceLease.collection == collection)
            ):
                return
            dialect = session.bind.dialect.name if session.bind is not None else ""
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            session.execute(
                insert(SourceLease).values(collection=collection).on_conflict_do_nothing()
            )
