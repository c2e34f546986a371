"""Reindex inside the server (admin scope): the way to reindex on the embedded store,
which the server holds as its one writer, so no `docchat reindex` can run beside it.

`POST /api/admin/reindex` starts a job in a thread of the server (one at a time) on
the server's own stores; `GET /api/admin/reindex` says how it goes and what each
generation holds. Queries follow the swap at once: the retriever resolves the served
generation on every question.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.api.deps import ComponentsDep, admin_scope
from app.api.errors import ERROR_RESPONSES
from app.api.problems import ApiError
from app.components import Components, load_embedder
from app.store import audit
from app.store.index_record import Chunking

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=admin_scope())


class ReindexIn(BaseModel):
    """What to do: run (re-embed and swap), rollback, drop-previous or abort."""

    action: Literal["run", "rollback", "drop-previous", "abort"] = "run"
    collection: str | None = Field(None, description="Default: vectors.collection.")
    embedding: str | None = Field(None, description="Model folder. Default: the configured.")
    backend: Literal["auto", "torch", "onnx", "onnx-int8"] | None = None


class _Job:
    """The one reindex job of this server: its state and progress."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: dict[str, Any] = {"state": "idle"}

    def update(self, **values: Any) -> None:
        with self.lock:
            self.state.update(values)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return dict(self.state)


_job = _Job()


def _reindexer(components: Components) -> Any:
    from ingest.reindex import Reindexer

    ingest = components.settings.ingest
    chunking = Chunking(ingest.chunk_tokens, ingest.chunk_overlap)
    return Reindexer(components.db, components.vectors, chunking=chunking)


def _run(components: Components, body: ReindexIn, collection: str) -> None:
    settings = components.settings
    began = time.time()
    _job.update(
        state="running",
        action=body.action,
        collection=collection,
        started=began,
        done=0,
        total=None,
        error=None,
    )
    try:
        reindexer = _reindexer(components)

        def progress(done: int, total: int) -> None:
            _job.update(done=done, total=total)

        if body.action == "run":
            path = Path(body.embedding) if body.embedding else None
            embedder = load_embedder(settings, path, body.backend)
            summary = reindexer.run(collection, embedder, progress=progress)
            result = f"{summary.served_now} serves {collection} ({summary.embedded} embedded)"
        elif body.action == "rollback":
            # The model the previous index was built with (a server loads it by the
            # path in its record, as it does to follow a swap).
            summary = reindexer.rollback(
                collection,
                lambda record: components.embedder.for_index(collection, record),
                progress=progress,
            )
            result = f"{summary.served_now} serves {collection} again"
        elif body.action == "drop-previous":
            result = f"dropped {reindexer.drop_previous(collection)}"
        else:
            result = f"dropped {reindexer.abort(collection)}"
        _job.update(state="done", result=result, seconds=round(time.time() - began, 1))
    except Exception as exc:  # reported through GET; the server goes on
        _job.update(state="failed", error=str(exc), seconds=round(time.time() - began, 1))


@router.post("/reindex", status_code=202, responses=ERROR_RESPONSES)
def start_reindex(body: ReindexIn, components: ComponentsDep) -> dict[str, Any]:
    """Start a reindex job in this server (409 while one runs); poll GET for its end."""
    collection = body.collection or components.settings.vectors.collection
    audit.describe(target=collection, action=body.action, embedding=body.embedding)
    with _job.lock:
        if _job.state.get("state") == "running":
            raise ApiError(409, "reindex_running", "a reindex job is already running")
        _job.state = {"state": "starting", "action": body.action, "collection": collection}
    threading.Thread(
        target=_run, args=(components, body, collection), name="reindex", daemon=True
    ).start()
    return _job.snapshot()


@router.get("/reindex", responses=ERROR_RESPONSES)
def reindex_status(
    components: ComponentsDep, collection: str | None = Query(None)
) -> dict[str, Any]:
    """The job (state, progress, result or error) and the collection's generations."""
    name = collection or components.settings.vectors.collection
    return {"job": _job.snapshot(), "index": _reindexer(components).status(name)}
