"""What a collection's owners do without being admins (app/access/policy.py says who owns
what): upload files into it, add, remove and sync its sources, and see its ingest runs
and their findings. Every change is audited as the admin routes' are.

A collection the caller may not read answers 404, as everywhere; one she reads but does
not own answers 403. Owners add git and website sources only, and never name a
credential: a folder or a file:// repository would read the server's own disk, and the
operator's tokens and keys are for the sources an admin registers.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from app.access.policy import CollectionNotFound
from app.api import sources as admin_sources
from app.api.admin import IngestRunOut, run_out
from app.api.deps import (
    ComponentsDep,
    IdentityDep,
    SessionDep,
    SettingsDep,
    audit_admin,
    require_scope,
)
from app.api.errors import ERROR_RESPONSES
from app.api.problems import ApiError
from app.api.sources import SourceOut, SyncStarted
from app.api.uploads import UPLOAD_FORM, UploadResult, ingest_form, read_form
from app.components import Components
from app.security.identity import Identity
from app.store.models import IngestRun
from ingest.sources.registry import SourceProblem, SourceView

router = APIRouter(
    prefix="/api/collections/{name}",
    tags=["collections"],
    dependencies=[require_scope("chat"), Depends(audit_admin, scope="function")],
)
# The upload's path, for the body size limit of uploads (app/main.py).
UPLOAD_PATH = re.compile(r"/api/collections/[^/]+/documents")


class OwnedSourceIn(BaseModel):
    """A source an owner adds to her collection."""

    name: str = Field(description="Its name: 1-63 of [a-zA-Z0-9._-].")
    kind: Literal["git", "website"]
    config: dict[str, Any] = Field(
        description="The kind's settings (docs/sources.md); no credential or ssh_key."
    )
    interval_s: int = Field(0, ge=0, description="Seconds between syncs; 0: on demand.")
    cron: str | None = Field(None, description="A cron expression instead of an interval.")


def owned(components: Components, caller: Identity | None, name: str) -> str:
    """`name` if the caller owns it; 404 if she may not read it, 403 if she only reads."""
    if not components.access.may_read(caller, name):
        raise CollectionNotFound(name)
    if not components.access.may_own(caller, name):
        raise ApiError(
            403,
            "forbidden",
            f"you may read {name!r} but not change it: an admin makes owners "
            f"(docchat collections grant {name} --owner ...)",
        )
    return name


def _source(components: Components, collection: str, source: str) -> SourceView:
    """One of the collection's sources (404 for another collection's, as for none)."""
    try:
        view = admin_sources.sources_of(components).get(source)
    except SourceProblem:
        view = None
    if view is None or view.collection != collection:
        raise ApiError(404, "not_found", f"no source {source!r} in {collection!r}")
    return view


def _check_config(kind: str, config: dict[str, Any]) -> None:
    if config.get("credential") or config.get("ssh_key"):
        raise ApiError(
            403, "forbidden", "credentials are named by admins: ask one to add this source"
        )
    url = str(config.get("url", ""))
    if kind == "git" and urlsplit(url).scheme == "file":
        raise ApiError(403, "forbidden", "url: a file:// repository is for admins")


@router.post("/documents", openapi_extra=UPLOAD_FORM, responses=ERROR_RESPONSES)
async def upload_to_collection(
    name: str,
    request: Request,
    components: ComponentsDep,
    settings: SettingsDep,
    identity: IdentityDep,
) -> UploadResult:
    """Upload documents (multipart, field `files`) into a collection you own; they go
    through the same checks as every ingest: the report says what was added, skipped
    (unchanged), quarantined or failed."""
    await asyncio.to_thread(owned, components, identity, name)
    form = await read_form(request, settings)
    return await ingest_form(form, components, settings, name)


@router.get("/sources", responses=ERROR_RESPONSES)
def list_owned_sources(
    name: str, components: ComponentsDep, identity: IdentityDep
) -> list[SourceOut]:
    """The sources of a collection you own, with their schedules and last syncs."""
    owned(components, identity, name)
    every = admin_sources.sources_of(components).list()
    return [SourceOut.of(s) for s in every if s.collection == name]


@router.post("/sources", status_code=201, responses=ERROR_RESPONSES)
def add_owned_source(
    name: str, body: OwnedSourceIn, components: ComponentsDep, identity: IdentityDep
) -> SourceOut:
    """Add a git or website source to a collection you own (409: the name is taken)."""
    owned(components, identity, name)
    _check_config(body.kind, body.config)
    admin_in = admin_sources.SourceIn(
        name=body.name,
        collection=name,
        kind=body.kind,
        config=body.config,
        interval_s=body.interval_s,
        cron=body.cron,
    )
    return admin_sources.add_source(admin_in, components)


@router.get("/sources/{source}", responses=ERROR_RESPONSES)
def show_owned_source(
    name: str, source: str, components: ComponentsDep, identity: IdentityDep
) -> SourceOut:
    """One source of a collection you own: schedule, last sync, counts, error."""
    owned(components, identity, name)
    return SourceOut.of(_source(components, name, source))


@router.delete("/sources/{source}", responses=ERROR_RESPONSES)
def remove_owned_source(
    name: str,
    source: str,
    request: Request,
    components: ComponentsDep,
    identity: IdentityDep,
    keep_documents: Annotated[
        bool, Query(description="Leave the documents it brought in the collection.")
    ] = False,
) -> dict[str, Any]:
    """Remove a source of a collection you own and (unless kept) its documents."""
    owned(components, identity, name)
    view = _source(components, name, source)
    return admin_sources.remove_source(view.name, request, components, keep_documents)


@router.post("/sources/{source}/sync", status_code=202, responses=ERROR_RESPONSES)
def sync_owned_source(
    name: str, source: str, request: Request, components: ComponentsDep, identity: IdentityDep
) -> SyncStarted:
    """Start syncing a source of a collection you own (its outcome: GET .../{source}).
    The mass-change guard holds: only an admin may let a sync replace most of it."""
    owned(components, identity, name)
    view = _source(components, name, source)
    return admin_sources.sync_source(view.name, request, components, False)


@router.get("/runs", responses=ERROR_RESPONSES)
def owned_runs(
    name: str,
    session: SessionDep,
    components: ComponentsDep,
    identity: IdentityDep,
    limit: Annotated[int, Query(ge=1, le=200, description="How many, newest first.")] = 20,
) -> list[IngestRunOut]:
    """The latest ingest runs of a collection you own (uploads, syncs, `docchat
    ingest`), with their findings."""
    owned(components, identity, name)
    runs = session.scalars(
        select(IngestRun)
        .where(IngestRun.collection == name)
        .order_by(IngestRun.id.desc())
        .limit(limit)
    )
    return [run_out(r) for r in runs]
