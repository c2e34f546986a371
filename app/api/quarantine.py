"""Quarantined files over HTTP (admin scope): the list, release and drop, as
`docchat quarantine` does them (ingest/quarantine.py); each change is an audit event
naming who did it and why."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.api.deps import ComponentsDep, IdentityDep, actor_of, admin_scope
from app.api.errors import ERROR_RESPONSES
from app.api.problems import ApiError
from app.api.uploads import UploadResult, ingest_lock, upload_result
from app.components import Components
from ingest import quarantine
from ingest.quarantine import NotQuarantined, Quarantined

router = APIRouter(prefix="/api/admin/quarantine", tags=["admin"], dependencies=admin_scope())


class QuarantinedOut(BaseModel):
    """A file a run kept out of the index."""

    finding: int = Field(description="Its finding's id: what release and drop name.")
    collection: str
    source: str = Field(description="The file, as findings and citations name it.")
    run_id: int = Field(description="The run that quarantined it.")
    at: str = Field(description="When that run started.")
    reason: str = Field(description='Why: "exact duplicate of ...".')
    uploaded: bool = Field(description="An uploaded copy (dropping it deletes the copy).")

    @classmethod
    def of(cls, item: Quarantined) -> QuarantinedOut:
        return cls(
            finding=item.finding,
            collection=item.collection,
            source=item.source,
            run_id=item.run_id,
            at=item.at.isoformat(),
            reason=item.reason,
            uploaded=item.uploaded,
        )


class Why(BaseModel):
    """Why an admin releases or drops a file: kept in the audit trail."""

    reason: str = Field(min_length=1, max_length=500, description="Why (shown in the trail).")


class DroppedOut(BaseModel):
    """A dropped file."""

    finding: int
    deleted: bool = Field(description="Whether an uploaded copy was deleted.")


def _uploads(components: Components) -> Path:
    return components.settings.data_dir / "uploads"


def _find(components: Components, finding: int) -> Quarantined:
    try:
        return quarantine.find(components.db, _uploads(components), finding)
    except NotQuarantined as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@router.get("", responses=ERROR_RESPONSES)
def list_quarantined(
    components: ComponentsDep,
    collection: Annotated[str | None, Query(max_length=63, description="Only this one.")] = None,
) -> list[QuarantinedOut]:
    """The files in quarantine now, newest first."""
    found = quarantine.quarantined(components.db, _uploads(components), collection)
    return [QuarantinedOut.of(item) for item in found]


@router.post("/{finding}/release", responses=ERROR_RESPONSES)
async def release_file(
    finding: int, body: Why, components: ComponentsDep, identity: IdentityDep
) -> UploadResult:
    """Index a quarantined file in spite of the duplicate (a run of that file alone)."""
    item = await asyncio.to_thread(_find, components, finding)

    def run() -> UploadResult:
        outcomes: dict[str, str] = {}
        with ingest_lock:  # the embedded store has one writer
            summary = quarantine.release(
                components.db,
                components.ingestor(),
                item,
                actor_of(identity),
                body.reason,
                progress=lambda source, outcome, _n: outcomes.__setitem__(source, outcome),
            )
        return upload_result(summary, outcomes)

    return await asyncio.to_thread(run)


@router.post("/{finding}/drop", responses=ERROR_RESPONSES)
def drop_file(
    finding: int, body: Why, components: ComponentsDep, identity: IdentityDep
) -> DroppedOut:
    """Forget a quarantined file: an uploaded copy is deleted; another file is left where
    it is and taken off the list (until a run quarantines it again)."""
    item = _find(components, finding)
    deleted = quarantine.drop(components.db, item, actor_of(identity), body.reason)
    return DroppedOut(finding=finding, deleted=deleted)
