"""Document uploads: a caller with the ingest scope into any collection (POST
/api/documents), and a collection's owner into hers (POST
/api/collections/{name}/documents, app/api/owned.py). Every file is checked before any
is written; the ingest runs through the same pipeline and checks as `docchat ingest`."""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.datastructures import FormData, UploadFile

from app.access.collections import Collections, name_problem
from app.access.policy import CollectionNotFound
from app.api.deps import ComponentsDep, SettingsDep, actor_of, get_identity, require_scope
from app.api.errors import ERROR_RESPONSES
from app.api.problems import ApiError
from app.components import Components
from app.security.identity import Identity
from app.settings import Settings
from ingest.loaders import SUPPORTED_SUFFIXES
from ingest.summary import IngestSummary


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


uploads = APIRouter(prefix="/api", tags=["ingest"], dependencies=[require_scope("ingest")])

UPLOAD_PATH = "/api/documents"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,199}")  # fullmatch: no "\n"
# One upload ingests at a time: the embedded store has one writer.
ingest_lock = threading.Lock()


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
    form = await read_form(request, settings)
    collection = str(form.get("collection") or settings.vectors.collection)
    if name_problem(collection):
        raise ApiError(422, "invalid_request", f"collection: {name_problem(collection)}")
    await asyncio.to_thread(_upload_target, components, get_identity(request), collection)
    return await ingest_form(form, components, settings, collection)


async def read_form(request: Request, settings: Settings) -> FormData:
    """The multipart form, bounded in files and fields before it is parsed."""
    try:
        return await request.form(max_files=settings.security.max_upload_files, max_fields=5)
    except Exception as exc:  # starlette reports too many files and bad bodies this way
        raise ApiError(400, "invalid_upload", f"unreadable upload: {exc}") from None


async def ingest_form(
    form: FormData, components: Components, settings: Settings, collection: str
) -> UploadResult:
    """Check every file of the form (name, type, size), then save and ingest them into
    `collection` (whose writer the caller was checked to be); a file that failed to
    ingest keeps no copy on disk."""
    limits = settings.security
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
