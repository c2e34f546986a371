"""Administration over HTTP: keys, ingest runs, the audit trail, deletions and purges
(admin scope) and document uploads (ingest scope)."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.datastructures import UploadFile

from app.access.collections import Collections, name_problem
from app.access.policy import CollectionNotFound
from app.api.deps import (
    ComponentsDep,
    IdentityDep,
    SessionDep,
    SettingsDep,
    actor_of,
    admin_scope,
    get_identity,
    require_scope,
)
from app.api.errors import ERROR_RESPONSES
from app.api.problems import ApiError
from app.api.schemas import DeletedOut
from app.components import Components
from app.security.identity import Identity, Scope
from app.store import audit, retention
from app.store.models import OUTCOMES, IngestRun, utcnow
from ingest.loaders import SUPPORTED_SUFFIXES
from ingest.summary import IngestSummary


class KeyOut(BaseModel):
    """An API key as admins see it: never the key or its hash."""

    id: str
    name: str
    scope: str
    state: str = Field(description="active, expired or revoked.")
    created_at: str
    last_used_at: str | None
    expires_at: str | None
    collections: list[str] | None = Field(
        None, description="The only collections it reads (null: not limited)."
    )


class KeyIn(BaseModel):
    """A key to create."""

    name: str = Field(min_length=1, max_length=64)
    scope: Scope
    expires_days: float | None = Field(None, gt=0, le=36500)
    collections: list[str] | None = Field(
        None, max_length=100, description="The only collections it may read."
    )


class KeyCreated(BaseModel):
    """A new key: shown this once, never again."""

    id: str
    name: str
    key: str


class Revoked(BaseModel):
    """The key that was revoked."""

    revoked: str


class RunFindingOut(BaseModel):
    """A data-quality finding of a stored ingest run."""

    source: str
    severity: str
    reason: str


class IngestRunOut(BaseModel):
    """An ingest run and its summary."""

    id: int
    collection: str
    status: str
    dry_run: bool
    started_at: str
    finished_at: str | None
    counts: dict[str, int] = Field(description="Files per outcome (new, changed, ...).")
    chunks_written: int
    seconds: float
    # The run's findings, under the name clients have always read.
    issues: list[RunFindingOut]


class FindingOut(BaseModel):
    """A data-quality finding of an upload's ingest."""

    source: str
    check: str
    severity: str
    reason: str


class UploadResult(BaseModel):
    """What ingesting an upload did."""

    run_id: int | None
    status: str
    new: int
    changed: int
    unchanged: int
    failed: int
    quarantined: int
    chunks_written: int
    findings: list[FindingOut]
    outcomes: dict[str, str] = Field(description="Each uploaded file's outcome.")


class AuditEventOut(BaseModel):
    """One admin action in the audit trail (read only: the API cannot change it)."""

    id: int
    created_at: str
    actor: str = Field(description='A key\'s name, "cli:<OS user>", "server" or "anonymous".')
    action: str = Field(description='What was done, e.g. "key.revoke", "model.activate".')
    target: str = Field(description="What it was done to: a key, a model, a conversation.")
    outcome: str = Field(description='"ok", "refused" or "failed".')
    reason: str | None = Field(description="Why it was refused or failed.")
    detail: dict[str, Any] = Field(
        description="Counts, hashes and flags; never secrets or message text."
    )


admin = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=admin_scope())
uploads = APIRouter(prefix="/api", tags=["ingest"], dependencies=[require_scope("ingest")])

UPLOAD_PATH = "/api/documents"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,199}")  # fullmatch: no "\n"
# One upload ingests at a time: the embedded store has one writer.
ingest_lock = threading.Lock()


@admin.get("/keys", responses=ERROR_RESPONSES)
def list_keys(components: ComponentsDep) -> list[KeyOut]:
    """Every API key: name, scope, dates and state — never the key or its hash."""
    return [
        KeyOut(
            id=k.id,
            name=k.name,
            scope=k.scope,
            state=k.state,
            created_at=k.created_at.isoformat(),
            last_used_at=k.last_used_at.isoformat() if k.last_used_at else None,
            expires_at=k.expires_at.isoformat() if k.expires_at else None,
            collections=list(k.collections) if k.collections is not None else None,
        )
        for k in components.guards.keys.list()
    ]


@admin.post("/keys", status_code=201, responses=ERROR_RESPONSES)
def create_key(body: KeyIn, components: ComponentsDep, identity: IdentityDep) -> KeyCreated:
    """Create a key (optionally limited to some collections); the response is the only
    time the key is ever shown."""
    try:
        key = components.guards.keys.create(
            body.name,
            body.scope,
            body.expires_days,
            collections=body.collections,
            actor=actor_of(identity),
        )
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    return KeyCreated(id=key.split("_")[1], name=body.name, key=key)


@admin.delete("/keys/{key_id}", responses=ERROR_RESPONSES)
def revoke_key(key_id: str, components: ComponentsDep, identity: IdentityDep) -> Revoked:
    """Revoke a key by id or name; it stops working on the next request."""
    if not components.guards.keys.revoke(key_id, actor=actor_of(identity)):
        raise ApiError(404, "not_found", "no such active key")
    return Revoked(revoked=key_id)


@admin.get("/audit", responses=ERROR_RESPONSES)
def audit_events(
    session: SessionDep,
    since: Annotated[
        datetime | None, Query(description="Only events at or after this time (ISO 8601).")
    ] = None,
    action: Annotated[
        str | None,
        Query(max_length=64, description='An action ("key.revoke") or a kind ("key").'),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many, newest first.")] = 100,
    actor: Annotated[
        str | None, Query(max_length=100, description='Who: "user:<id>", "key:<id>", "cli:root".')
    ] = None,
) -> list[AuditEventOut]:
    """The audit trail of admin actions, newest first. Read only: no route changes it."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    try:
        found = audit.events(session, since=since, action=action, actor=actor, limit=limit)
    except ValueError as exc:  # a `since` UTC cannot hold
        raise ApiError(422, "invalid_request", f"since: {exc}") from None
    return [AuditEventOut.model_validate(audit.as_dict(e)) for e in found]


@admin.delete("/keys/{key}/conversations", responses=ERROR_RESPONSES)
def delete_key_conversations(
    key: str,
    session: SessionDep,
    identity: IdentityDep,
    dry_run: Annotated[bool, Query(description="Count what would go; delete nothing.")] = False,
) -> DeletedOut:
    """Delete every conversation a key (name or id) started and every rating it gave."""
    try:
        counts = retention.delete_for_key(session, key, dry_run=dry_run)
    except LookupError:
        raise ApiError(404, "not_found", "no such key") from None
    if not dry_run:
        audit.record(
            session,
            actor_of(identity),
            "conversations.delete_for_key",
            key,
            detail=counts.as_dict(),
        )
    return DeletedOut(**counts.as_dict(), dry_run=dry_run)


@admin.post("/purge", responses=ERROR_RESPONSES)
def purge_conversations(
    session: SessionDep,
    identity: IdentityDep,
    older_than_days: Annotated[
        float,
        Query(
            gt=0,
            le=retention.MAX_DAYS,  # also refuses inf and nan: a cutoff before year 1 overflows
            description="Delete conversations inactive for this many days.",
        ),
    ],
    dry_run: Annotated[bool, Query(description="Count what would go; delete nothing.")] = False,
) -> DeletedOut:
    """Delete conversations whose last message is older than `older_than_days`, with
    their messages and ratings; curated examples stay."""
    before = utcnow() - timedelta(days=older_than_days)
    counts = retention.purge(session, conversations_before=before, dry_run=dry_run)
    if not dry_run:
        audit.record(
            session,
            actor_of(identity),
            "conversations.purge",
            f"{older_than_days:g}d",
            detail={**counts.as_dict(), "conversations_before": before.isoformat()},
        )
    return DeletedOut(**counts.as_dict(), dry_run=dry_run)


@admin.get("/ingest-runs", responses=ERROR_RESPONSES)
def ingest_runs(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200, description="How many, newest first.")] = 20,
) -> list[IngestRunOut]:
    """The latest ingest runs with their summaries and findings."""
    runs = session.scalars(select(IngestRun).order_by(IngestRun.id.desc()).limit(limit))
    return [
        IngestRunOut(
            id=r.id,
            collection=r.collection,
            status=r.status,
            dry_run=r.dry_run,
            started_at=r.started_at.isoformat(),
            finished_at=r.finished_at.isoformat() if r.finished_at else None,
            counts={n: getattr(r, n) for n in OUTCOMES},
            chunks_written=r.chunks_written,
            seconds=r.seconds,
            issues=[
                RunFindingOut(source=f.path, severity=f.severity, reason=f.reason)
                for f in r.findings
            ],
        )
        for r in runs
    ]


def _ingest(components: Components, files: list[Path], collection: str) -> UploadResult:
    settings = components.settings
    outcomes: dict[str, str] = {}
    with ingest_lock:
        summary = components.ingestor(max_file_bytes=settings.security.max_upload_bytes).run(
            files,
            collection,
            progress=lambda source, outcome, _written: outcomes.__setitem__(source, outcome),
        )
    return upload_result(summary, outcomes)


def upload_result(summary: IngestSummary, outcomes: dict[str, str]) -> UploadResult:
    """What a run of uploaded (or released) files did, as the API answers it."""
    return UploadResult(
        run_id=summary.run_id,
        status=summary.status,
        new=summary.new,
        changed=summary.changed,
        unchanged=summary.unchanged,
        failed=summary.failed,
        quarantined=summary.quarantined,
        chunks_written=summary.chunks_written,
        findings=[
            FindingOut(source=f.source, check=f.check, severity=f.severity, reason=f.reason)
            for f in summary.findings
        ],
        outcomes=outcomes,
    )


# The form is read by hand (to bound files and fields before parsing them all), so its
# shape is declared here for the OpenAPI document.
UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "Documents: Markdown, HTML, reST, text, PDF, "
                            "Word, PowerPoint, Excel, ODT or EPUB.",
                        },
                        "collection": {"type": "string", "description": "Target collection."},
                    },
                }
            }
        },
    }
}


@uploads.post("/documents", openapi_extra=UPLOAD_FORM, responses=ERROR_RESPONSES)
async def upload_documents(
    request: Request, components: ComponentsDep, settings: SettingsDep
) -> UploadResult:
    """Upload documents (multipart, field `files`) and ingest them into the collection."""
    limits = settings.security
    try:
        form = await request.form(max_files=limits.max_upload_files, max_fields=5)
    except Exception as exc:  # starlette reports too many files and bad bodies this way
        raise ApiError(400, "invalid_upload", f"unreadable upload: {exc}") from None
    collection = str(form.get("collection") or settings.vectors.collection)
    if name_problem(collection):
        raise ApiError(422, "invalid_request", f"collection: {name_problem(collection)}")
    await asyncio.to_thread(_upload_target, components, get_identity(request), collection)
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    if not files:
        raise ApiError(422, "invalid_request", "files: at least one file is required")
    accepted: list[tuple[str, bytes]] = []
    for upload in files:
        name = Path(upload.filename or "").name
        suffix = Path(name).suffix.lower()
        if not SAFE_NAME.fullmatch(name) or ".." in name:
            raise ApiError(422, "invalid_upload", f"file name not allowed: {name[:80]!r}")
        if suffix not in SUPPORTED_SUFFIXES:
            allowed = ", ".join(sorted(SUPPORTED_SUFFIXES))
            raise ApiError(415, "unsupported_type", f"{name}: allowed types are {allowed}")
        data = await upload.read()
        if len(data) > limits.max_upload_bytes:
            raise ApiError(413, "body_too_large", f"{name}: over {limits.max_upload_bytes} bytes")
        accepted.append((name, data))
    # Nothing is written until every file passed the checks.
    target = settings.data_dir / "uploads" / collection
    saved = await asyncio.to_thread(_save, target, accepted)
    try:
        result = await asyncio.to_thread(_ingest, components, list(saved), collection)
    except BaseException:
        await asyncio.to_thread(_undo, saved, set(saved))
        raise
    failed = {path for path in saved if result.outcomes.get(path.name) == "failed"}
    await asyncio.to_thread(_undo, saved, failed)
    return result


def _upload_target(components: Components, caller: Identity | None, collection: str) -> None:
    """Uploading is writing, not reading: a caller with the ingest scope writes into any
    collection (a new one is registered for admins only until readers are granted),
    except a key limited to some collections, which writes into those alone."""
    limit = caller.collections if caller is not None else None
    if limit is not None and collection not in limit:
        raise CollectionNotFound(collection)
    Collections(components.db).ensure(collection, everyone=False, actor=actor_of(caller))


def _save(folder: Path, files: list[tuple[str, bytes]]) -> dict[Path, bytes | None]:
    """Write the files; what each path held before (None: nothing)."""
    folder.mkdir(parents=True, exist_ok=True)
    previous: dict[Path, bytes | None] = {}
    for name, data in files:
        path = folder / name
        previous[path] = path.read_bytes() if path.is_file() else None
        path.write_bytes(data)
    return previous


def _undo(previous: dict[Path, bytes | None], paths: set[Path]) -> None:
    """Put back what `paths` held before the upload: a file that failed to ingest keeps
    no copy on disk, and the version still in the index stays beside it."""
    for path in paths:
        before = previous[path]
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(before)
