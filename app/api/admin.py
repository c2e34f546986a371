"""Administration over HTTP: keys, ingest runs (admin scope) and document uploads
(ingest scope)."""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select
from starlette.datastructures import UploadFile

from app.api.deps import ComponentsDep, SettingsDep, require_scope
from app.api.errors import ApiError
from app.components import Components
from app.store.models import IngestRun
from ingest.loaders import SUPPORTED_SUFFIXES
from ingest.pipeline import OUTCOMES, Ingestor

admin = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[require_scope("admin")])
uploads = APIRouter(prefix="/api", tags=["ingest"], dependencies=[require_scope("ingest")])

UPLOAD_PATH = "/api/documents"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,199}$")
# One upload ingests at a time: the embedded store has one writer.
_ingest_lock = threading.Lock()


@admin.get("/keys")
async def list_keys(components: ComponentsDep) -> list[dict[str, Any]]:
    """Every API key: name, scope, dates and state — never the key or its hash."""
    keys = await asyncio.to_thread(components.guards.keys.list)
    return [
        {
            "id": k.id,
            "name": k.name,
            "scope": k.scope,
            "state": k.state,
            "created_at": k.created_at.isoformat(),
            "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
            "expires_at": k.expires_at.isoformat() if k.expires_at else None,
        }
        for k in keys
    ]


@admin.delete("/keys/{key_id}")
async def revoke_key(key_id: str, components: ComponentsDep) -> dict[str, str]:
    """Revoke a key by id or name; it stops working on the next request."""
    if not await asyncio.to_thread(components.guards.keys.revoke, key_id):
        raise ApiError(404, "not_found", "no such active key")
    return {"revoked": key_id}


def _runs(components: Components, limit: int) -> list[dict[str, Any]]:
    with components.db.session() as session:
        rows = session.scalars(select(IngestRun).order_by(IngestRun.id.desc()).limit(limit))
        return [
            {
                "id": r.id,
                "collection": r.collection,
                "status": r.status,
                "dry_run": r.dry_run,
                "started_at": r.started_at.isoformat(),
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                "counts": {n: getattr(r, n) for n in OUTCOMES},
                "chunks_written": r.chunks_written,
                "seconds": r.seconds,
                "issues": [
                    {"source": i.path, "severity": i.severity, "reason": i.reason} for i in r.issues
                ],
            }
            for r in rows
        ]


@admin.get("/ingest-runs")
async def ingest_runs(components: ComponentsDep, limit: int = 20) -> list[dict[str, Any]]:
    """The latest ingest runs with their summaries and findings."""
    return await asyncio.to_thread(_runs, components, max(1, min(limit, 200)))


def _ingest(components: Components, files: list[Path], collection: str) -> dict[str, Any]:
    settings = components.settings
    with _ingest_lock:
        summary = Ingestor.configured(
            settings.ingest,
            components.db,
            components.vectors,
            components.embedder,
            max_file_bytes=settings.security.max_upload_bytes,
        ).run(files, collection)
    return {
        "run_id": summary.run_id,
        "status": summary.status,
        "new": summary.new,
        "changed": summary.changed,
        "unchanged": summary.unchanged,
        "failed": summary.failed,
        "quarantined": summary.quarantined,
        "chunks_written": summary.chunks_written,
        "findings": [
            {"source": f.source, "check": f.check, "severity": f.severity, "reason": f.reason}
            for f in summary.findings
        ],
    }


@uploads.post("/documents")
async def upload_documents(
    request: Request, components: ComponentsDep, settings: SettingsDep
) -> dict[str, Any]:
    """Upload documents (multipart, field `files`) and ingest them into the collection."""
    limits = settings.security
    try:
        form = await request.form(max_files=limits.max_upload_files, max_fields=5)
    except Exception as exc:  # starlette reports too many files and bad bodies this way
        raise ApiError(400, "invalid_upload", f"unreadable upload: {exc}") from None
    collection = str(form.get("collection") or settings.vectors.collection)
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,61}[a-zA-Z0-9]", collection):
        raise ApiError(422, "invalid_request", "collection: 3-63 of [a-zA-Z0-9._-]")
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    if not files:
        raise ApiError(422, "invalid_request", "files: at least one file is required")
    accepted: list[tuple[str, bytes]] = []
    for upload in files:
        name = Path(upload.filename or "").name
        suffix = Path(name).suffix.lower()
        if not SAFE_NAME.match(name) or ".." in name:
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
    return await asyncio.to_thread(_ingest, components, saved, collection)


def _save(folder: Path, files: list[tuple[str, bytes]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files:
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths
