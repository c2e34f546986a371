"""Find the chunks that answer a question."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from app.llm.embedder import Embedder
from app.store.vectors import Hit, VectorStore
from app.telemetry.reporter import Telemetry


@dataclass(frozen=True)
class Citation:
    """A retrieved chunk as the user sees it."""

    n: int
    source: str
    title: str
    section: str
    score: float
    document_id: str
    chunk: int

    @property
    def url(self) -> str:
        """Where the chat page shows the chunk in its document."""
        return f"/sources/{self.document_id}#chunk-{self.chunk}"

    def as_dict(self) -> dict[str, object]:
        """JSON shape used by the API and stored with the message."""
        return {
            "n": self.n,
            "source": self.source,
            "title": self.title,
            "section": self.section,
            "score": round(self.score, 4),
            "document_id": self.document_id,
            "chunk": self.chunk,
            "url": self.url,
        }


def citations(hits: list[Hit]) -> list[Citation]:
    """Number the hits as the prompt does, [1] first."""
    return [
        Citation(
            n=i,
            source=str(h.metadata.get("source", "")),
            title=str(h.metadata.get("title", "")),
            section=str(h.metadata.get("section", "")),
            score=h.score,
            document_id=str(h.metadata.get("document_id", "")),
            chunk=int(h.metadata.get("ord", 0)),
        )
        for i, h in enumerate(hits, start=1)
    ]


class Retriever:
    """Embeds the query with the ingest embedder and searches one collection."""

    def __init__(
        self,
        embedder: Embedder,
        vectors: VectorStore,
        collection: str,
        *,
        top_k: int,
        min_score: float,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.embedder = embedder
        self.vectors = vectors
        self.collection = collection
        self.top_k = top_k
        self.min_score = min_score
        self.telemetry = telemetry or Telemetry()

    def search_sync(self, query: str, k: int | None = None) -> list[Hit]:
        """All of the k nearest chunks, best first, whatever their score."""
        # The model the served collection was built with (a reindex may have swapped
        # it): EmbeddingMismatch naming both rather than a silently worse ranking.
        record = self.vectors.target(self.collection).record
        embedder = self.embedder.for_index(self.collection, record)
        with self.telemetry.stage("embed"):
            vector = embedder.embed([query])[0]
        with self.telemetry.stage("retrieve") as span:
            hits = self.vectors.query(self.collection, vector, k or self.top_k)
            span.set_attribute("docchat.hits", len(hits))
            if hits:
                span.set_attribute("docchat.top_score", hits[0].score)
        return hits

    async def search(self, query: str, k: int | None = None) -> list[Hit]:
        """search_sync off the event loop (embedding is CPU-bound)."""
        return await asyncio.to_thread(self.search_sync, query, k)

    async def relevant(self, question: str, previous_question: str | None = None) -> list[Hit]:
        """Chunks that pass the similarity threshold.

        A follow-up such as "and how do I undo it?" means little alone: when the
        question finds nothing, it is tried again together with the previous one.
        """
        found = await self.search(question)
        hits = [h for h in found if h.score >= self.min_score]
        if not hits and previous_question:
            found = await self.search(f"{previous_question}\n{question}")
            hits = [h for h in found if h.score >= self.min_score]
        if found:
            self.telemetry.metrics.retrieval_top_score.observe(found[0].score)
        return hits
