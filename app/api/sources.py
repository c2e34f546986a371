"""Sources over HTTP (admin scope, audited like every admin route): register, list,
show, remove and sync the folders, git repositories and websites collections follow."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from app.api.deps import ComponentsDep, admin_scope
from app.api.errors import ERROR_RESPONSES
from app.api.problems import ApiError
from app.components import Components
from app.store import audit
from ingest.sources.registry import SourceProblem, Sources, SourceView
from ingest.sources.scheduler import Scheduler

router = APIRouter(prefix="/api/admin/sources", tags=["admin"], dependencies=admin_scope())


class SourceIn(BaseModel):
    """A source to register."""

    name: str = Field(description="Its name: 1-63 of [a-zA-Z0-9._-].")
    collection: str = Field(description="The collection it fills.")
    kind: Literal["folder", "git", "website"]
    config: dict[str, Any] = Field(
        description="The kind's settings (docs/sources.md), e.g. {url, branch, subpath}; "
        "credentials are named (credential), never given."
    )
    interval_s: int = Field(0, ge=0, description="Seconds between syncs; 0: on demand.")
    cron: str | None = Field(
        None,
        description="A cron expression the syncs follow instead of an interval, e.g. "
        "'0 3 * * 1-5' (UTC; 'TZ=Europe/Paris 0 3 * * 1-5' for another zone). 422 if "
        "invalid.",
    )


class SourceOut(BaseModel):
    """A source, its schedule and its last sync."""

    id: str
    name: str
    collection: str
    kind: str
    config: dict[str, Any]
    interval_s: int
    cron: str | None
    enabled: bool
    created_at: str
    next_run_at: str | None = Field(description="The next scheduled sync (UTC).")
    last_started_at: str | None
    last_finished_at: str | None
    last_status: str | None = Field(
        description="completed, partial, refused, failed, running, interrupted (killed)."
    )
    last_error: str | None
    last_counts: dict[str, Any] = Field(
        description="added, changed, removed, unchanged, failed, quarantined."
    )
    last_findings: int
    last_seconds: float | None
    last_run_id: int | None = Field(description="The ingest run (GET /api/admin/ingest-runs).")
    last_success_at: str | None

    @classmethod
    def of(cls, view: SourceView) -> SourceOut:
        return cls.model_validate(view.as_dict())


class SyncStarted(BaseModel):
    """A sync started in the server; its outcome shows in GET .../{name}."""

    source: str
    state: str = "started"


def sources_of(components: Components) -> Sources:
    return Sources(components.db, components.settings.data_dir)


def _scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler | None = getattr(request.app.state, "sources", None)
    if scheduler is None:
        raise ApiError(503, "unavailable", "this server does not run syncs")
    return scheduler


def _get(sources: Sources, name: str) -> SourceView:
    try:
        return sources.get(name)
    except SourceProblem as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@router.get("", responses=ERROR_RESPONSES)
def list_sources(components: ComponentsDep) -> list[SourceOut]:
    """Every source with its schedule and last sync."""
    return [SourceOut.of(s) for s in sources_of(components).list()]


@router.post("", status_code=201, responses=ERROR_RESPONSES)
def add_source(body: SourceIn, components: ComponentsDep) -> SourceOut:
    """Register a source (422 if its settings are wrong, 409 if the name is taken)."""
    audit.describe(target=body.name, collection=body.collection, kind=body.kind)
    sources = sources_of(components)
    try:
        sources.get(body.name)
    except SourceProblem:
        pass
    else:
        raise ApiError(409, "conflict", f"a source named {body.name!r} exists already")
    try:
        view = sources.add(
            body.name,
            body.collection,
            body.kind,
            body.config,
            interval_s=body.interval_s,
            cron=body.cron,
        )
    except SourceProblem as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    return SourceOut.of(view)


@router.get("/{name}", responses=ERROR_RESPONSES)
def show_source(name: str, components: ComponentsDep) -> SourceOut:
    """A source: settings, schedule, last sync's counts, findings, duration and error."""
    return SourceOut.of(_get(sources_of(components), name))


@router.delete("/{name}", responses=ERROR_RESPONSES)
def remove_source(
    name: str,
    request: Request,
    components: ComponentsDep,
    keep_documents: Annotated[
        bool, Query(description="Leave the documents it brought in the collection.")
    ] = False,
) -> dict[str, Any]:
    """Remove a source, its clone or mirror and (unless kept) its documents."""
    audit.describe(target=name, keep_documents=keep_documents)
    _get(sources_of(components), name)
    scheduler = _scheduler(request)
    if not scheduler.lock.acquire(timeout=5):
        raise ApiError(409, "conflict", "a sync runs in this server; try again when it ends")
    try:
        source, removed = scheduler.syncer().remove(name, keep_documents=keep_documents)
    finally:
        scheduler.lock.release()
    return {"removed": source.name, "documents_removed": removed}


@router.post("/{name}/sync", status_code=202, responses=ERROR_RESPONSES)
def sync_source(
    name: str,
    request: Request,
    components: ComponentsDep,
    allow_mass_change: Annotated[
        bool, Query(description="Let it change more than ingest.mass_change_share.")
    ] = False,
) -> SyncStarted:
    """Start syncing a source in the server (409 while another sync of it runs)."""
    source = _get(sources_of(components), name)
    audit.describe(target=source.name, allow_mass_change=allow_mass_change)
    if not _scheduler(request).start(source.id, allow_mass_change=allow_mass_change):
        raise ApiError(409, "conflict", "a sync runs in this server; try again when it ends")
    return SyncStarted(source=source.name)
