"""Snapshots over HTTP (admin scope), as `docchat backup list|create|verify` do them
(app/backup): those in `backup.folder`, a new one (then pruned to `backup.keep`), and a
check of one. Taking one writes `backup.create` to the audit trail as the CLI's does;
a verification is recorded with its outcome like every admin POST. Restoring stays a
CLI command: it replaces the stores under a server that must be stopped first."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from app.api.deps import ComponentsDep, IdentityDep, SessionDep, actor_of, admin_scope
from app.api.errors import ERROR_RESPONSES
from app.api.problems import ApiError
from app.backup import snapshot
from app.settings import Settings
from app.store import audit
from app.store.models import AuditEvent

router = APIRouter(prefix="/api/admin/backups", tags=["admin"], dependencies=admin_scope())
# One snapshot at a time from this server: two would race for the same folder name.
_taking = threading.Lock()


class SnapshotOut(BaseModel):
    """A complete snapshot in the folder, from its manifest (`verify` checks the files)."""

    name: str
    facts: dict[str, Any] = Field(
        description="created_at, docchat_version, schema_revision, database, vectors, "
        "collections, records, models, adapters, files, size_bytes (as `backup list`); "
        "{'error': ...} for an unreadable manifest."
    )


class BackupsOut(BaseModel):
    """The console's Backups section."""

    folder: str | None = Field(description="backup.folder; null: not set.")
    keep: int | None = Field(description="backup.keep: the retention of console snapshots.")
    snapshots: list[SnapshotOut] = Field(description="Oldest first.")
    history: list[dict[str, Any]] = Field(
        description="The latest backup.create events (from the CLI, a schedule or here), "
        "newest first: when snapshots were taken, by whom, with what outcome."
    )


class CreateIn(BaseModel):
    """A snapshot taken from the console."""

    with_models: bool = Field(
        False, description="Copy your own model files too (they can be large)."
    )


class CreatedOut(BaseModel):
    """A snapshot taken, and the older ones retention deleted."""

    name: str
    facts: dict[str, Any]
    pruned: list[str]


class VerifiedOut(BaseModel):
    """A snapshot checked whole: signature, paths, schema, every file's hash."""

    name: str
    ok: bool
    signed_by_key: str | None
    facts: dict[str, Any]


def _folder(settings: Settings) -> Path:
    if settings.backup.folder is None:
        raise ApiError(
            409, "not_configured", "backup.folder is not set: the server knows no snapshots"
        )
    return settings.backup.folder.expanduser().resolve()


def _named(settings: Settings, name: str) -> Path:
    """A snapshot of the folder by its exact name (never a path of the caller's)."""
    for path in snapshot.snapshots(_folder(settings)):
        if path.name == name:
            return path
    raise ApiError(404, "not_found", f"no snapshot named {name!r} in backup.folder")


def _facts(path: Path) -> dict[str, Any]:
    try:
        return snapshot.read_manifest(path).summary()
    except snapshot.BackupError as exc:
        return {"error": str(exc)}


@router.get("", responses=ERROR_RESPONSES)
def list_backups(
    components: ComponentsDep,
    session: SessionDep,
    history: Annotated[int, Query(ge=0, le=100, description="How many events.")] = 10,
) -> BackupsOut:
    """The snapshots in backup.folder, the retention, and when snapshots were taken."""
    settings = components.settings
    folder = settings.backup.folder
    found = snapshot.snapshots(folder.expanduser().resolve()) if folder is not None else []
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "backup.create")
        .order_by(AuditEvent.id.desc())
        .limit(history)
    )
    return BackupsOut(
        folder=str(folder) if folder is not None else None,
        keep=settings.backup.keep,
        snapshots=[SnapshotOut(name=p.name, facts=_facts(p)) for p in found],
        history=[audit.as_dict(e) for e in events],
    )


@router.post("", status_code=201, responses=ERROR_RESPONSES)
async def create_backup(
    body: CreateIn, components: ComponentsDep, identity: IdentityDep
) -> CreatedOut:
    """Take a snapshot into backup.folder (safe while serving), then keep backup.keep."""
    settings = components.settings
    folder = _folder(settings)

    def take() -> CreatedOut:
        if not _taking.acquire(blocking=False):
            raise ApiError(409, "busy", "a snapshot is being taken: try again when it is done")
        try:
            path = snapshot.create(
                settings, folder, with_models=body.with_models, actor=actor_of(identity)
            )
            keep = settings.backup.keep
            pruned = snapshot.prune(folder, keep) if keep else []
        except (snapshot.BackupError, OSError) as exc:
            raise ApiError(500, "backup_failed", f"backup failed: {exc}") from None
        finally:
            _taking.release()
        return CreatedOut(name=path.name, facts=_facts(path), pruned=[p.name for p in pruned])

    return await asyncio.to_thread(take)


@router.post("/{name}/verify", responses=ERROR_RESPONSES)
async def verify_backup(name: str, components: ComponentsDep) -> VerifiedOut:
    """Check a snapshot whole; 422 naming the first problem (damaged, forged, unsigned)."""
    settings = components.settings
    path = await asyncio.to_thread(_named, settings, name)
    try:
        check = await asyncio.to_thread(snapshot.checked, path, settings)
    except snapshot.BackupError as exc:
        raise ApiError(422, "snapshot_refused", str(exc)) from None
    return VerifiedOut(
        name=name, ok=True, signed_by_key=check.key_id, facts=check.manifest.summary()
    )
