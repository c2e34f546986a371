"""Chroma, embedded on disk or as a server: the only module that talks to it."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
import numpy as np
import numpy.typing as npt
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError

from app.store.index_record import Chunking, EmbeddingIdentity, EmbeddingMismatch, IndexRecord

log = logging.getLogger(__name__)

# Chroma's upsert limit is larger, but smaller batches keep memory flat on big runs.
UPSERT_BATCH = 1000


class VectorStoreBusy(RuntimeError):
    """The embedded store is held by another process in a way that excludes this one."""


class VectorStoreUnavailable(RuntimeError):
    """The Chroma server set in vectors.url does not answer."""


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its cosine similarity to the query."""

    id: str
    text: str
    score: float
    metadata: dict[str, Any]
    embedding: list[float] | None = None


@dataclass(frozen=True)
class ExportPage:
    """Records of a collection as Chroma stores them: what a backup writes."""

    ids: list[str]
    embeddings: npt.NDArray[np.float32]  # one row per id
    documents: list[str | None]
    metadatas: list[dict[str, Any] | None]


# A served collection name is an alias: a small pointer collection named
# <name>--pointer says which physical collection (a "generation") serves it, which one
# a rollback returns to, and which one a reindex is building. A name without a pointer
# is its own physical collection (every collection from before reindex existed).
POINTER_SUFFIX = "--pointer"
GENERATION_SEP = "--g"
_POINTER_KEYS = ("target", "previous", "building")


@dataclass(frozen=True)
class Pointer:
    """Where a collection name points: served, kept for rollback, being built."""

    name: str
    target: str
    previous: str = ""
    building: str = ""
    exists: bool = False  # False: no pointer yet, the name is its own collection


@dataclass(frozen=True)
class Target:
    """The physical collection serving a name, and what it was built with."""

    name: str
    record: IndexRecord | None
    count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class _DirLock:
    """An advisory lock on the embedded store: many readers, or one writer.

    Chroma's on-disk mode is not safe for several writing processes, so ingest takes
    the lock exclusively and refuses to start beside a server that holds it shared.
    """

    def __init__(self, directory: Path, *, exclusive: bool) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / ".docchat.lock"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(self._fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            holder = "another process is using it" if exclusive else "an ingest is writing"
            raise VectorStoreBusy(
                f"the embedded vector store at {directory} is busy ({holder}). The "
                "embedded store takes one writer at a time: stop the server before "
                "ingesting, or run a Chroma server and set DOCCHAT_VECTORS__URL for both."
            ) from None

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases it)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class VectorStore:
    """Named collections of chunk vectors with their text and source metadata."""

    def __init__(self, *, url: str | None, path: Path, writer: bool) -> None:
        self._lock: _DirLock | None = None
        # Telemetry off: no byte may leave the machine.
        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if url:
            parsed = urlparse(url)
            self.location = url
            try:
                self._client: Any = chromadb.HttpClient(
                    host=parsed.hostname or "localhost",
                    port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                    ssl=parsed.scheme == "https",
                    settings=chroma_settings,
                )
            except ValueError as exc:  # what chromadb raises when the server does not answer
                raise VectorStoreUnavailable(
                    f"cannot reach the Chroma server at {url} ({exc}); check vectors.url "
                    "(DOCCHAT_VECTORS__URL) and that `chroma run` is up"
                ) from exc
        else:
            self.location = str(path)
            self._lock = _DirLock(path, exclusive=writer)
            self._client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
        # A reader of the embedded store must not write (not even a record).
        self.writable = bool(url) or writer

    def _collection(self, name: str, physical: bool = False) -> Any:
        # `physical`: the name of a generation itself, never resolved through a pointer
        # (a collection from before pointers keeps its name as its first generation).
        return self._physical(name if physical else self.resolve(name))

    def _physical(self, name: str) -> Any:
        # No embedding function: docchat always passes its own vectors.
        return self._client.get_or_create_collection(
            name, metadata={"hnsw:space": "cosine"}, embedding_function=None
        )

    def _existing(self, name: str) -> Any | None:
        try:
            return self._client.get_collection(name, embedding_function=None)
        except (NotFoundError, ValueError):
            return None

    # -- names, pointers and records -------------------------------------------------

    def pointer(self, name: str) -> Pointer:
        """Where `name` points now (read fresh each time: a swap shows at once)."""
        found = self._existing(name + POINTER_SUFFIX)
        if found is None:
            return Pointer(name, name)
        meta = found.metadata or {}
        return Pointer(
            name,
            str(meta.get("target") or name),
            str(meta.get("previous") or ""),
            str(meta.get("building") or ""),
            exists=True,
        )

    def set_pointer(self, name: str, *, target: str, previous: str, building: str) -> None:
        """Point `name` at `target` in one metadata write: the atomic swap."""
        meta = {"target": target, "previous": previous, "building": building}
        found = self._existing(name + POINTER_SUFFIX)
        if found is None:
            self._client.create_collection(
                name + POINTER_SUFFIX, metadata=meta, embedding_function=None
            )
        else:
            found.modify(metadata=meta)

    def resolve(self, name: str) -> str:
        """The physical collection serving `name`."""
        return self.pointer(name).target

    def target(self, name: str, *, physical: bool = False) -> Target:
        """The physical collection serving `name` (or `name` itself, when `physical`),
        its record and size."""
        physical_name = name if physical else self.resolve(name)
        found = self._existing(physical_name)
        if found is None:
            return Target(physical_name, None)
        meta = dict(found.metadata or {})
        return Target(physical_name, IndexRecord.from_metadata(meta), int(found.count()), meta)

    def record(self, physical: str) -> IndexRecord | None:
        """What a physical collection was built with (None: not recorded, or missing)."""
        found = self._existing(physical)
        return IndexRecord.from_metadata(found.metadata) if found is not None else None

    def set_record(
        self, physical: str, record: IndexRecord, extra: dict[str, Any] | None = None
    ) -> None:
        """Write a physical collection's record (creating the collection if needed)."""
        collection = self._physical(physical)
        # Chroma replaces the whole metadata and refuses hnsw keys after creation.
        meta = {k: v for k, v in (collection.metadata or {}).items() if not k.startswith("hnsw:")}
        meta.update(record.to_metadata())
        meta.update(extra or {})
        collection.modify(metadata=meta)

    def check_model(
        self,
        name: str,
        model: EmbeddingIdentity,
        chunking: Chunking | None = None,
        *,
        adopt: bool = True,
    ) -> IndexRecord | None:
        """Refuse a model (or, when given, chunking) other than the one the collection
        serving `name` was built with.

        A collection with vectors but no record (from before records existed) adopts
        `model` with a log line, if this store may write; an empty collection without
        one gets it when `adopt` (ingest), so its first chunks are recorded.
        """
        target = self.target(name)
        record = target.record
        if record is None:
            if target.count == 0 and not adopt:
                return None
            record = IndexRecord(model, chunking)
            if target.count > 0:
                log.warning(
                    "collection %r (%d chunks) has no record of its embedding model: "
                    "adopting %s, the model in use%s",
                    name,
                    target.count,
                    model.describe(),
                    "" if self.writable else " (not written: this store is opened read-only)",
                )
            if self.writable:
                self.set_record(target.name, record)
            return record
        if record.model.space != model.space:
            raise EmbeddingMismatch(name, record, model)
        if chunking is not None and record.chunking is None and self.writable:
            record = IndexRecord(record.model, chunking)
            self.set_record(target.name, record)
        elif chunking is not None and record.chunking not in (None, chunking):
            raise EmbeddingMismatch(name, record, model, chunking)
        return record

    def drop(self, physical: str) -> None:
        """Delete a physical collection (a generation no longer pointed at)."""
        if self._existing(physical) is not None:
            self._client.delete_collection(physical)

    def drop_name(self, name: str) -> None:
        """Delete everything serving `name`: every generation its pointer names (served,
        kept for rollback, being built), then the pointer."""
        pointer = self.pointer(name)
        for physical in {pointer.target, pointer.previous, pointer.building, name} - {""}:
            self.drop(physical)
        if pointer.exists:
            self._client.delete_collection(name + POINTER_SUFFIX)

    def next_generation(self, name: str) -> str:
        """A physical name for a new generation of `name` that is not in use."""
        n = 1
        while self._existing(f"{name}{GENERATION_SEP}{n}") is not None:
            n += 1
        return f"{name}{GENERATION_SEP}{n}"

    def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
        *,
        physical: bool = False,
    ) -> None:
        """Insert or replace chunks by id (idempotent, so a re-run after a crash is safe)."""
        target = self._collection(collection, physical)
        for start in range(0, len(ids), UPSERT_BATCH):
            end = start + UPSERT_BATCH
            target.upsert(
                ids=list(ids[start:end]),
                embeddings=[list(e) for e in embeddings[start:end]],
                documents=list(texts[start:end]),
                metadatas=list(metadatas[start:end]),
            )

    def delete(self, collection: str, where: dict[str, Any]) -> None:
        """Remove every chunk whose metadata matches `where`."""
        self._collection(collection).delete(where=where)

    def delete_ids(self, collection: str, ids: Sequence[str], *, physical: bool = False) -> None:
        """Remove chunks by id."""
        target = self._collection(collection, physical)
        for start in range(0, len(ids), UPSERT_BATCH):
            target.delete(ids=list(ids[start : start + UPSERT_BATCH]))

    def ids(
        self, collection: str, where: dict[str, Any] | None = None, *, physical: bool = False
    ) -> set[str]:
        """Ids of the chunks matching `where` (all of them without it)."""
        result = self._collection(collection, physical).get(where=where, include=[])
        return set(result["ids"])

    def query(self, collection: str, embedding: Sequence[float], k: int) -> list[Hit]:
        """The k nearest chunks, best first, with cosine similarity as the score."""
        result = self._collection(collection).query(
            query_embeddings=[list(embedding)],
            n_results=k,
            include=["documents", "metadatas", "distances", "embeddings"],
        )
        hits = []
        for chunk_id, text, meta, distance, vector in zip(
            result["ids"][0],
            result["documents"][0],
            result["metadatas"][0],
            result["distances"][0],
            result["embeddings"][0],
            strict=True,
        ):
            score = 1.0 - float(distance)
            hits.append(
                Hit(chunk_id, text or "", score, dict(meta or {}), [float(x) for x in vector])
            )
        return hits

    def get(self, collection: str, ids: Sequence[str]) -> list[Hit]:
        """Chunks by id with their vectors, in the order asked (ids no longer stored
        are left out); the score is 0: the caller knows what to compare them with."""
        if not ids:
            return []
        result = self._collection(collection).get(
            ids=list(ids), include=["documents", "metadatas", "embeddings"]
        )
        found = {
            chunk_id: Hit(chunk_id, text or "", 0.0, dict(meta or {}), [float(x) for x in vec])
            for chunk_id, text, meta, vec in zip(
                result["ids"],
                result["documents"],
                result["metadatas"],
                result["embeddings"],
                strict=True,
            )
        }
        return [found[i] for i in ids if i in found]

    def count(self, collection: str) -> int:
        """Chunks stored in a collection."""
        return int(self._collection(collection).count())

    def ping(self) -> None:
        """Raise if the store cannot be reached."""
        self._client.heartbeat()

    def close(self) -> None:
        """Release the embedded store's lock."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- every collection as stored: what a backup takes and a restore puts back -----

    def collection_names(self) -> list[str]:
        """Every physical collection in the store (pointers and generations too)."""
        return sorted(c.name for c in self._client.list_collections())

    def collection_settings(self, physical: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """A collection's metadata and its index configuration (HNSW parameters)."""
        found = self._client.get_collection(physical, embedding_function=None)
        hnsw = (found.configuration_json or {}).get("hnsw")
        return dict(found.metadata or {}), ({"hnsw": dict(hnsw)} if hnsw else {})

    def export_pages(self, physical: str, page: int = UPSERT_BATCH) -> Iterator[ExportPage]:
        """Every record of a physical collection with its vector, in pages, in the
        store's own order."""
        found = self._client.get_collection(physical, embedding_function=None)
        offset = 0
        while True:
            result = found.get(
                include=["embeddings", "documents", "metadatas"], limit=page, offset=offset
            )
            if not result["ids"]:
                return
            yield ExportPage(
                list(result["ids"]),
                np.asarray(result["embeddings"], dtype=np.float32),
                list(result["documents"]),
                [dict(m) if m else None for m in result["metadatas"]],
            )
            offset += len(result["ids"])

    def create_as(
        self, physical: str, metadata: dict[str, Any], configuration: dict[str, Any]
    ) -> None:
        """Create a collection with exactly this metadata and index configuration."""
        # Chroma takes the HNSW space from the metadata's hnsw: keys when they are there.
        legacy = any(key.startswith("hnsw:") for key in metadata)
        self._client.create_collection(
            physical,
            metadata=metadata or None,
            configuration=None if legacy else (configuration or None),
            embedding_function=None,
        )

    def add_records(self, physical: str, page: ExportPage) -> None:
        """Put back a page of exported records (ids, vectors, texts, metadata as they were)."""
        self._client.get_collection(physical, embedding_function=None).add(
            ids=page.ids,
            embeddings=page.embeddings,
            documents=page.documents,
            metadatas=page.metadatas,
        )

    def drop_everything(self) -> None:
        """Delete every collection (a forced restore over an existing store)."""
        for name in self.collection_names():
            self._client.delete_collection(name)

    def collection_count(self, physical: str) -> int:
        """Records in a physical collection (0: there is none)."""
        found = self._existing(physical)
        return int(found.count()) if found is not None else 0
