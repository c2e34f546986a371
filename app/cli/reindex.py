"""`docchat reindex`: re-embed a collection from its stored chunks, beside the one
serving, then swap; roll back, drop the previous index, abort, status."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.cli.common import err, fail, load, say
from app.store import audit

if TYPE_CHECKING:
    from app.settings import Settings
    from app.store.index_record import IndexRecord
    from ingest.pipeline import EmbeddingModel
    from ingest.reindex import Reindexer, ReindexSummary


@contextmanager
def _reindexer(settings: Settings, batch: int) -> Iterator[Reindexer]:
    from app.components import open_vectors
    from app.store.db import DatabaseUnavailable, open_database
    from app.store.index_record import Chunking
    from app.store.vectors import VectorStoreBusy, VectorStoreUnavailable
    from ingest.reindex import Reindexer

    try:
        vectors = open_vectors(settings, writer=True)
    except (VectorStoreBusy, VectorStoreUnavailable) as exc:
        raise fail(str(exc)) from None
    try:
        db = open_database(settings)
    except DatabaseUnavailable as exc:
        vectors.close()
        raise fail(str(exc)) from None
    try:
        chunking = Chunking(settings.ingest.chunk_tokens, settings.ingest.chunk_overlap)
        yield Reindexer(db, vectors, chunking=chunking, batch=batch)
    finally:
        db.close()
        vectors.close()


@contextmanager
def _bar(description: str) -> Iterator[Any]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks"),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        task = bar.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def reindex(
    collection: Annotated[
        str | None, typer.Option(help="Collection to re-embed (default: vectors.collection).")
    ] = None,
    embedding: Annotated[
        Path | None,
        typer.Option(help="Folder of the embedding model to use (default: embedding.model_path)."),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(help="auto, torch, onnx or onnx-int8 (default: embedding.backend)."),
    ] = None,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Serve the previous index again.")
    ] = False,
    drop_previous: Annotated[
        bool, typer.Option("--drop-previous", help="Delete the index kept for rollback.")
    ] = False,
    abort: Annotated[
        bool, typer.Option("--abort", help="Delete an unfinished reindex's shadow.")
    ] = False,
    status: Annotated[
        bool, typer.Option("--status", help="Show the served, previous and building indexes.")
    ] = False,
    batch: Annotated[int, typer.Option(min=1, help="Chunks embedded per step.")] = 256,
) -> None:
    """Re-embed a collection into a shadow index, then swap it in at once.

    Re-embed a collection from the chunk text already stored into a shadow index while
    the current one keeps serving, then swap it in at once (servers follow without a
    restart). A killed run continues where it stopped when run again. The index swapped
    out is kept for --rollback until --drop-previous.

    Example: docchat reindex --collection docs --embedding /models/new-minilm
    """
    from app.llm.embedder import EMBEDDING_BACKENDS
    from app.store.index_record import EmbeddingMismatch
    from ingest.reindex import ReindexError

    actions = [a for a, on in (("rollback", rollback), ("drop", drop_previous),
                               ("abort", abort), ("status", status)) if on]  # fmt: skip
    if len(actions) > 1:
        raise fail("give at most one of --rollback, --drop-previous, --abort, --status")
    if backend is not None and backend not in EMBEDDING_BACKENDS:
        raise fail(f"unknown backend {backend!r}: use one of {', '.join(EMBEDDING_BACKENDS)}")
    settings = load()
    target = collection or settings.vectors.collection
    audit.describe(target=target)
    action: Literal["run", "rollback", "drop", "abort", "status"] = (
        actions[0] if actions else "run"  # type: ignore[assignment]
    )
    try:
        with _reindexer(settings, batch) as reindexer:
            if action == "status":
                sys.stdout.write(json.dumps(reindexer.status(target), indent=2) + "\n")
            elif action == "drop":
                say(f"dropped {reindexer.drop_previous(target)}: no rollback for {target} now")
            elif action == "abort":
                say(f"aborted: dropped the unfinished {reindexer.abort(target)}")
            elif action == "rollback":
                with _bar("catching up") as advance:
                    summary = reindexer.rollback(
                        target, lambda record: _embedder_for(settings, record), progress=advance
                    )
                _print(summary, rolled_back=True)
            else:
                from app.components import load_embedder

                embedder = load_embedder(settings, embedding, backend)
                with _bar("re-embedding") as advance:
                    summary = reindexer.run(target, embedder, progress=advance)
                _print(summary)
    except (ReindexError, EmbeddingMismatch) as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail(
            "interrupted; the served index is untouched: run the same command to continue",
            130,
        ) from None


def _embedder_for(settings: Settings, record: IndexRecord) -> EmbeddingModel:
    """The model an index was built with, loaded from the path in its record."""
    from app.components import load_embedder

    path = Path(record.model.path) if record.model.path else None
    if path is None or not path.is_dir():
        raise fail(
            f"the previous index was built with {record.model.describe()}, which is not "
            f"at {record.model.path or '(no path recorded)'} on this machine"
        )
    return load_embedder(settings, path, "auto").variant_for(record)


def _print(summary: ReindexSummary, *, rolled_back: bool = False) -> None:
    if rolled_back:
        say(
            f"rolled back {summary.collection}: {summary.served_now} serves it again "
            f"({summary.embedded} chunks caught up); {summary.served_before} is kept for "
            "rollback"
        )
        return
    resumed = " (resumed)" if summary.resumed else ""
    say(
        f"reindexed {summary.collection}{resumed} with {summary.model}: {summary.chunks} "
        f"chunks, {summary.embedded} embedded in {summary.seconds:.1f} s"
    )
    say(
        f"{summary.served_now} now serves it; {summary.served_before} is kept for "
        f"`docchat reindex --rollback --collection {summary.collection}` until "
        "--drop-previous"
    )
    if summary.dropped:
        say(f"dropped the index before that, {summary.dropped}")
