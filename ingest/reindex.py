"""Re-embed a collection from the chunk text already stored, beside the one serving.

A collection name is an alias (see app/store/vectors.py): a pointer says which physical
collection (a generation, `<name>--gN`) serves it. A reindex:

1. creates a shadow generation, records in it the model it is built with, and marks it
   as `building` in the pointer; the served generation keeps answering meanwhile;
2. embeds every chunk of the collection's SQL `chunks` table into the shadow, in
   batches sorted by length, under the chunks' own ids (upserts: idempotent);
3. catches up with what an ingest changed meanwhile (chunks added or removed in SQL);
4. swaps: one write of the pointer makes the shadow the served generation and keeps the
   old one as `previous` (an older `previous` is dropped).

A run killed anywhere leaves the served generation untouched and the shadow named in
the pointer; the next run finds it, skips the chunks it already holds (progress is the
shadow's own content) and continues. `rollback` points the name back at `previous`
(catching it up with the chunks first), `drop_previous` deletes it, `abort` deletes an
unfinished shadow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from app.store.db import Database
from app.store.index_record import Chunking, EmbeddingMismatch, IndexRecord
from app.store.models import Chunk, Document
from app.store.vectors import VectorStore
from ingest.chunking import embedding_text
from ingest.pipeline import EmbeddingModel

log = logging.getLogger(__name__)
BATCH = 256  # chunks embedded and upserted per step: a kill loses at most one step
STATE = "docchat:state"  # in a generation's metadata: building, or ready


class ReindexError(RuntimeError):
    """A reindex that cannot be done as asked (nothing to reindex, nothing to roll back
    to, a shadow of another model in progress)."""


@dataclass(frozen=True)
class ChunkToEmbed:
    """A chunk stored in SQL, as the vector store is given it: the text to embed, the
    chunk's own text and its vector's metadata."""

    id: str
    text: str  # what gets embedded: title, section and text (ingest.chunking)
    document: str
    metadata: dict[str, Any]


@dataclass
class ReindexSummary:
    """What a run did."""

    collection: str
    served_before: str
    served_now: str = ""
    chunks: int = 0
    embedded: int = 0  # this run; the rest were in the shadow already (a resumed run)
    resumed: bool = False
    removed: int = 0  # chunks an ingest removed meanwhile
    dropped: str = ""  # the generation before `previous`, deleted at the swap
    seconds: float = 0.0
    model: str = ""
    stages: dict[str, float] = field(default_factory=dict)


# (chunks done, chunks in all) after each batch.
Progress = Callable[[int, int], None]


def stored_chunks(db: Database, collection: str) -> dict[str, ChunkToEmbed]:
    """Every chunk of the collection's documents in SQL, by id."""
    with db.session() as session:
        rows = session.execute(
            select(
                Chunk.id,
                Chunk.ord,
                Chunk.section,
                Chunk.text,
                Chunk.n_tokens,
                Document.id.label("document_id"),
                Document.path,
                Document.source,
                Document.title,
                Document.content_hash,
            )
            .join(Document, Chunk.document_id == Document.id)
            .where(Document.collection == collection)
        ).all()
    return {
        row.id: ChunkToEmbed(
            row.id,
            embedding_text(row.title, row.section, row.text),
            row.text,
            {
                # The metadata ingest writes (ingest/index_writer.py).
                "path": row.path,
                "source": row.source,
                "title": row.title,
                "section": row.section,
                "document_id": row.document_id,
                "ord": row.ord,
                "doc_hash": row.content_hash,
                "n_tokens": row.n_tokens,
            },
        )
        for row in rows
    }


class Reindexer:
    """Builds, swaps, rolls back and drops generations of one store's collections."""

    def __init__(
        self,
        db: Database,
        vectors: VectorStore,
        *,
        chunking: Chunking,
        batch: int = BATCH,
    ) -> None:
        self.db = db
        self.vectors = vectors
        self.chunking = chunking  # for a collection from before records: the settings'
        self.batch = batch

    def run(
        self,
        collection: str,
        embedder: EmbeddingModel,
        *,
        progress: Progress | None = None,
    ) -> ReindexSummary:
        """Re-embed `collection` with `embedder` into a shadow, then swap it in."""
        began = time.perf_counter()
        pointer = self.vectors.pointer(collection)
        shadow = pointer.building
        record = self.vectors.record(shadow) if shadow else None
        # A shadow is a new collection: with embedding.backend auto, int8 (or, when
        # resuming, the variant the unfinished shadow was started with).
        embedder = embedder.variant_for(record, new=True)
        summary = ReindexSummary(collection, pointer.target, model=embedder.identity.describe())
        chunks = stored_chunks(self.db, collection)
        if not chunks:
            raise ReindexError(f"collection {collection!r} has no stored chunks to re-embed")
        if shadow:
            if record is not None and record.model.space != embedder.identity.space:
                raise ReindexError(
                    f"a reindex of {collection!r} into {shadow} with {record.model.describe()} "
                    f"is unfinished: rerun it with that model, or `docchat reindex --abort "
                    f"--collection {collection}` first"
                )
            summary.resumed = True
            log.info("resuming the reindex of %r into %s", collection, shadow)
        else:
            shadow = self.vectors.next_generation(collection)
            served = self.vectors.target(collection).record
            chunking = served.chunking if served and served.chunking else self.chunking
            self.vectors.set_record(
                shadow, IndexRecord(embedder.identity, chunking), {STATE: "building"}
            )
            # Recorded before any vector is written: a killed run is found again.
            self.vectors.set_pointer(
                collection, target=pointer.target, previous=pointer.previous, building=shadow
            )
            log.info("reindexing %r into %s with %s", collection, shadow, summary.model)
        summary.chunks = len(chunks)
        self._fill(shadow, chunks, embedder, summary, progress)
        # An ingest may have run meanwhile: take its changes in before the swap.
        for _ in range(5):
            chunks = stored_chunks(self.db, collection)
            if not self._fill(shadow, chunks, embedder, summary, progress):
                break
        self.vectors.set_record(
            shadow, IndexRecord(embedder.identity, self._chunking(shadow)), {STATE: "ready"}
        )
        current = self.vectors.pointer(collection)
        # The swap: one write, picked up by every reader at its next query.
        self.vectors.set_pointer(collection, target=shadow, previous=current.target, building="")
        if current.previous and current.previous not in (shadow, current.target):
            self.vectors.drop(current.previous)
            summary.dropped = current.previous
        # An ingest that wrote to the old generation just before the swap: take it in.
        chunks = stored_chunks(self.db, collection)
        self._fill(shadow, chunks, embedder, summary, None)
        summary.served_now = shadow
        summary.chunks = len(chunks)
        summary.seconds = time.perf_counter() - began
        log.info(
            "reindexed %r: %s now serves it (%d chunks, %d embedded in %.1f s); %s kept "
            "for rollback",
            collection,
            shadow,
            summary.chunks,
            summary.embedded,
            summary.seconds,
            current.target,
        )
        return summary

    def _chunking(self, physical: str) -> Chunking | None:
        record = self.vectors.record(physical)
        return record.chunking if record else self.chunking

    def _fill(
        self,
        physical: str,
        chunks: dict[str, ChunkToEmbed],
        embedder: EmbeddingModel,
        summary: ReindexSummary,
        progress: Progress | None,
    ) -> bool:
        """Make `physical` hold exactly `chunks`: embed the missing ones, delete the
        others. Whether anything changed."""
        held = self.vectors.ids(physical, physical=True)
        extra = held - set(chunks)
        if extra:
            self.vectors.delete_ids(physical, sorted(extra), physical=True)
            summary.removed += len(extra)
        # Sorted by length: each batch pads to texts of about the same size.
        todo = sorted((c for c in chunks.values() if c.id not in held), key=lambda c: len(c.text))
        done = len(chunks) - len(todo)
        if progress:
            progress(done, len(chunks))
        for start in range(0, len(todo), self.batch):
            step = todo[start : start + self.batch]
            t0 = time.perf_counter()
            vectors = embedder.embed([c.text for c in step])
            t1 = time.perf_counter()
            self.vectors.upsert(
                physical,
                [c.id for c in step],
                vectors,
                [c.document for c in step],
                [c.metadata for c in step],
                physical=True,
            )
            summary.stages["embed"] = summary.stages.get("embed", 0.0) + t1 - t0
            summary.stages["store"] = summary.stages.get("store", 0.0) + time.perf_counter() - t1
            summary.embedded += len(step)
            done += len(step)
            log.info("reindex %s: %d/%d chunks embedded", physical, done, len(chunks))
            if progress:
                progress(done, len(chunks))
        return bool(extra or todo)

    def rollback(
        self,
        collection: str,
        embedder_for: Callable[[IndexRecord], EmbeddingModel],
        *,
        progress: Progress | None = None,
    ) -> ReindexSummary:
        """Serve `previous` again (the generation swapped out keeps being `previous`,
        so a second rollback goes forward again). Chunks an ingest changed since the
        swap are first embedded into it with the model it was built with
        (`embedder_for` its record)."""
        began = time.perf_counter()
        pointer = self.vectors.pointer(collection)
        if not pointer.previous:
            raise ReindexError(
                f"collection {collection!r} has no previous index to roll back to "
                "(none was kept, or it was dropped)"
            )
        summary = ReindexSummary(collection, pointer.target)
        record = self.vectors.record(pointer.previous)
        chunks = stored_chunks(self.db, collection)
        held = self.vectors.ids(pointer.previous, physical=True)
        if held != set(chunks):
            if record is None:
                raise ReindexError(
                    f"{pointer.previous} has no record of its embedding model, and chunks "
                    "changed since it served: reindex instead"
                )
            embedder = embedder_for(record)
            if embedder.identity.space != record.model.space:
                raise EmbeddingMismatch(collection, record, embedder.identity)
            summary.model = record.model.describe()
            self._fill(pointer.previous, chunks, embedder, summary, progress)
        self.vectors.set_pointer(
            collection, target=pointer.previous, previous=pointer.target, building=""
        )
        summary.served_now = pointer.previous
        summary.chunks = len(chunks)
        summary.seconds = time.perf_counter() - began
        log.info("rolled %r back: %s serves it again", collection, pointer.previous)
        return summary

    def drop_previous(self, collection: str) -> str:
        """Delete the generation kept for rollback; its name."""
        pointer = self.vectors.pointer(collection)
        if not pointer.previous:
            raise ReindexError(f"collection {collection!r} has no previous index to drop")
        self.vectors.set_pointer(
            collection, target=pointer.target, previous="", building=pointer.building
        )
        self.vectors.drop(pointer.previous)
        return pointer.previous

    def abort(self, collection: str) -> str:
        """Delete an unfinished shadow; its name."""
        pointer = self.vectors.pointer(collection)
        if not pointer.building:
            raise ReindexError(f"no reindex of {collection!r} is in progress")
        self.vectors.set_pointer(
            collection, target=pointer.target, previous=pointer.previous, building=""
        )
        self.vectors.drop(pointer.building)
        return pointer.building

    def status(self, collection: str) -> dict[str, Any]:
        """The served, previous and building generations with their models and sizes."""
        pointer = self.vectors.pointer(collection)
        out: dict[str, Any] = {"collection": collection, "stored_chunks": 0}
        out["stored_chunks"] = len(stored_chunks(self.db, collection))
        for role in ("target", "previous", "building"):
            name = getattr(pointer, role)
            if not name:
                out[role] = None
                continue
            target = self.vectors.target(name, physical=True)
            out[role] = {
                "name": target.name,
                "chunks": target.count,
                "model": target.record.model.describe() if target.record else None,
                "state": target.extra.get(STATE, "ready"),
            }
        return out
