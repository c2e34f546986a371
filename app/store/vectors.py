"""Chroma, embedded on disk or as a server: the only module that talks to it."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
from chromadb.config import Settings as ChromaSettings

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

    def _collection(self, name: str) -> Any:
        # No embedding function: docchat always passes its own vectors.
        return self._client.get_or_create_collection(
            name, metadata={"hnsw:space": "cosine"}, embedding_function=None
        )

    def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        """Insert or replace chunks by id (idempotent, so a re-run after a crash is safe)."""
        target = self._collection(collection)
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

    def ids(self, collection: str, where: dict[str, Any] | None = None) -> set[str]:
        """Ids of the chunks matching `where` (all of them without it)."""
        result = self._collection(collection).get(where=where, include=[])
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
