"""Find the chunks that answer a question."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from app.llm.embedder import Embedder
from app.rag.answer_types import missing_answer_types
from app.rag.answerable import rare_missing_names
from app.rag.assembly import ContextAssembler
from app.rag.followup import newest_question
from app.rag.scope import Calibration, calibrate, unknown_names
from app.settings import RagSettings
from app.store.db import Database
from app.store.lexical import LexicalIndex, tokens
from app.store.vectors import Hit, VectorStore
from app.telemetry.reporter import Telemetry

# Reciprocal rank fusion's constant: a chunk at rank r of a ranking adds 1 / (RRF_K + r).
RRF_K = 60


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


# A name as code writes it: dotted, snake_case, dashed, called, CamelCase, or with digits.
_NAME = re.compile(r"\w[.\-_/:]\w|\w\(|[a-z][A-Z]|[A-Za-z]\d|\d[A-Za-z]|`|--\w")


def names_something(query: str) -> bool:
    """Whether a query names something exactly (`json.dumps`, `--amend`, `WX-4163`),
    which words match better than meaning."""
    return bool(_NAME.search(query))


def fuse(
    rankings: Sequence[Sequence[str]], weights: Sequence[float] | None = None, k: int = RRF_K
) -> list[str]:
    """Reciprocal rank fusion: ids ordered by the sum of weight / (k + rank) over the
    rankings that hold them (ties keep the order of the first ranking)."""
    scores: dict[str, float] = {}
    for i, ranking in enumerate(rankings):
        weight = weights[i] if weights else 1.0
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (k + rank)
    return sorted(scores, key=lambda i: -scores[i])


class Retriever:
    """Embeds the query with the ingest embedder and searches one collection: by
    vectors alone, or (with a lexical index) by vectors and BM25 fused.

    Whether the collection covers a question at all (`relevant`, `context`): with
    `scope="calibrated"`, its best chunk must reach the collection's calibrated threshold
    (rag.min_score for a collection never calibrated) and it must name nothing the
    collection never mentions (app/rag/scope.py); with `scope="min_score"`, its best
    chunk must reach min_score, on every collection alike.
    """

    def __init__(
        self,
        embedder: Embedder,
        vectors: VectorStore,
        collection: str,
        *,
        top_k: int,
        min_score: float,
        telemetry: Telemetry | None = None,
        lexical: LexicalIndex | None = None,
        candidates: int = 20,
        assembler: ContextAssembler | None = None,
        lexical_weight: float = 1.0,
        scope: str = "min_score",
        answerable_names: bool = False,
        answer_types: bool = False,
    ) -> None:
        self.embedder = embedder
        self.vectors = vectors
        self.collection = collection
        self.top_k = top_k
        self.min_score = min_score
        self.telemetry = telemetry or Telemetry()
        self.lexical = lexical
        self.candidates = candidates
        self.assembler = assembler
        self.lexical_weight = lexical_weight
        self.scope = scope
        self.answerable_names = answerable_names
        self.answer_types = answer_types
        # Hits handed to the assembler: more than it can use, so that dropped
        # near-duplicates and merged neighbours leave room for others.
        self.pool = top_k if assembler is None else max(3 * top_k, 12)

    @classmethod
    def configured(
        cls,
        rag: RagSettings,
        embedder: Embedder,
        vectors: VectorStore,
        db: Database,
        collection: str,
        *,
        data_dir: Path | None,
        telemetry: Telemetry | None = None,
    ) -> Retriever:
        """A retriever as the settings say: hybrid or vector search, assembly within
        rag.context_tokens (the lexical index saved under data_dir/lexical)."""
        lexical = None
        if rag.retrieval == "hybrid":
            lexical = LexicalIndex(db, collection, data_dir / "lexical" if data_dir else None)
        assembler = None
        if rag.context_tokens:
            assembler = ContextAssembler(
                db, embedder.count_tokens, budget=rag.context_tokens, max_passages=rag.top_k
            )
        return cls(
            embedder,
            vectors,
            collection,
            top_k=rag.top_k,
            min_score=rag.min_score,
            telemetry=telemetry,
            lexical=lexical,
            candidates=rag.candidates,
            assembler=assembler,
            lexical_weight=rag.lexical_weight,
            scope=rag.scope,
            answerable_names=rag.answerable_names,
            answer_types=rag.answer_types,
        )

    def search_sync(self, query: str, k: int | None = None) -> list[Hit]:
        """All of the k nearest chunks, best first, whatever their score."""
        return self._search(query, k)[0]

    def best_score(self, question: str) -> float:
        """The cosine of the best chunk the chat's search finds for a question (what
        the scope threshold is compared with; -1.0 for an empty collection)."""
        return max((h.score for h in self.search_sync(question, self.pool)), default=-1.0)

    def calibration(self) -> Calibration | None:
        """The served collection's scope calibration, if it has one."""
        return Calibration.from_metadata(self.vectors.target(self.collection).extra)

    def calibrate(
        self,
        questions: Sequence[tuple[str, bool]] = (),
        *,
        basis: str = "",
        max_false_refusals: float = 0.05,
    ) -> Calibration:
        """The collection's scope calibration from a question set ((question,
        out_of_scope) pairs) or, without one, from the shipped off-topic list."""
        return calibrate(
            self.best_score,
            questions=questions,
            basis=basis,
            max_false_refusals=max_false_refusals,
        )

    def save_calibration(self, calibration: Calibration) -> None:
        """Store the calibration with the served collection (a writer store)."""
        target = self.vectors.target(self.collection)
        if target.record is None:
            raise ValueError(f"collection {self.collection!r} is empty: ingest it first")
        self.vectors.set_record(target.name, target.record, calibration.to_metadata())

    def _search(self, query: str, k: int | None = None) -> tuple[list[Hit], float]:
        """The k nearest chunks and the served collection's scope threshold."""
        # The model the served collection was built with (a reindex may have swapped
        # it): EmbeddingMismatch naming both rather than a silently worse ranking.
        target = self.vectors.target(self.collection)
        threshold = self.min_score
        if self.scope == "calibrated":
            calibration = Calibration.from_metadata(target.extra)
            threshold = calibration.threshold if calibration else self.min_score
        record = target.record
        embedder = self.embedder.for_index(self.collection, record)
        with self.telemetry.stage("embed"):
            vector = embedder.embed([query])[0]
        k = k or self.top_k
        with self.telemetry.stage("retrieve") as span:
            if self.lexical is None:
                hits = self.vectors.query(self.collection, vector, k)
            else:
                hits = self._hybrid(query, vector, k)
            span.set_attribute("docchat.hits", len(hits))
            if hits:
                span.set_attribute("docchat.top_score", hits[0].score)
        return hits, threshold

    def unknown_names(self, question: str) -> list[str]:
        """The names in a question the collection never mentions (none without a
        lexical index, whose vocabulary says what it mentions)."""
        if self.lexical is None:
            return []
        self.lexical.refresh()
        return unknown_names(question, tokens, self.lexical.knows)

    def _in_scope(self, question: str, found: list[Hit], threshold: float) -> list[Hit]:
        """The relevant chunks among those found: none when the collection does not
        cover the question (its best chunk below the threshold, or a name it never
        mentions), else those that reach min_score (or the threshold, when lower)."""
        if not found or max(h.score for h in found) < threshold:
            return []
        if self.scope == "calibrated" and self.unknown_names(question):
            return []
        floor = min(self.min_score, threshold)
        return [h for h in found if h.score >= floor]

    def _hybrid(self, query: str, vector: list[float], k: int) -> list[Hit]:
        """The vector and BM25 rankings fused; every hit scored by its cosine
        similarity to the query, so `min_score` means what it always meant."""
        assert self.lexical is not None
        n = max(k, self.candidates)
        by_vector = self.vectors.query(self.collection, vector, n)
        self.lexical.refresh()
        by_words = self.lexical.search(query, n)
        order = fuse(
            [[h.id for h in by_vector], [h.chunk_id for h in by_words]],
            [1.0, 1.0 if names_something(query) else self.lexical_weight],
        )
        known = {h.id: h for h in by_vector}
        wanted = order[: k + 5]  # a few spare: an id may be gone from the vectors
        missing = [i for i in wanted if i not in known]
        if missing:
            query_vector = np.asarray(vector, dtype=np.float64)
            for hit in self.vectors.get(self.collection, missing):
                chunk_vector = np.asarray(hit.embedding, dtype=np.float64)
                denominator = float(np.linalg.norm(chunk_vector) * np.linalg.norm(query_vector))
                score = float(chunk_vector @ query_vector) / denominator if denominator else 0.0
                known[hit.id] = replace(hit, score=score)
        return [known[i] for i in wanted if i in known][:k]

    async def search(self, query: str, k: int | None = None) -> list[Hit]:
        """search_sync off the event loop (embedding is CPU-bound)."""
        return await asyncio.to_thread(self.search_sync, query, k)

    async def relevant(self, question: str, previous_question: str | None = None) -> list[Hit]:
        """Chunks of a question the collection covers (none when it does not).

        A follow-up such as "and how do I undo it?" means little alone: when the
        question finds nothing, it is tried again together with the previous one.
        """
        return await asyncio.to_thread(self._relevant, question, previous_question)

    def _relevant(self, question: str, previous_question: str | None) -> list[Hit]:
        found, threshold = self._search(question, self.pool)
        hits = self._in_scope(question, found, threshold)
        if not hits and previous_question:
            together = f"{previous_question}\n{question}"
            found, threshold = self._search(together, self.pool)
            hits = self._in_scope(together, found, threshold)
        if found:
            self.telemetry.metrics.retrieval_top_score.observe(found[0].score)
        return hits

    async def context(self, question: str, previous_question: str | None = None) -> list[Hit]:
        """The passages for the prompt: the relevant chunks assembled within the
        budget (or the top_k of them as found, without an assembler)."""
        return await asyncio.to_thread(self.context_sync, question, previous_question)

    def context_sync(self, question: str, previous_question: str | None = None) -> list[Hit]:
        """`context`, blocking (evaluations and tools)."""
        hits = self._relevant(question, previous_question)
        if self.assembler is not None and hits:
            with self.telemetry.stage("assemble"):
                hits = self.assembler.assemble(hits)
        hits = hits[: self.top_k] if self.assembler is None else hits
        # Passages that name nothing of what the question asks about, where that is rare
        # in the collection, do not answer it (app/rag/answerable.py); part of the
        # calibrated scope decision (scope=min_score is the behaviour before it).
        calibrated = self.scope == "calibrated"
        lexical = self.lexical if self.answerable_names and calibrated else None
        if hits and lexical is not None and rare_missing_names(question, hits, lexical.share):
            return []
        # Nor do passages without a fact of the kind asked for: a price, a phone
        # number, a release date (app/rag/answer_types.py), by the newest question alone
        # (a follow-up joined to a price question need not ask a price).
        typed = self.answer_types and calibrated
        asked = newest_question(question, previous_question)
        if hits and typed and missing_answer_types(asked, [h.text for h in hits]):
            return []
        return hits


class RetrieverPool:
    """One retriever per collection, built on first use and kept (each keeps its own
    keyword index in memory); a deleted collection's is forgotten."""

    def __init__(self, build: Callable[[str], Retriever]) -> None:
        self._build = build
        self._built: dict[str, Retriever] = {}
        self._lock = threading.Lock()

    def get(self, collection: str) -> Retriever:
        with self._lock:
            found = self._built.get(collection)
            if found is None:
                found = self._built[collection] = self._build(collection)
            return found

    def forget(self, collection: str) -> None:
        with self._lock:
            self._built.pop(collection, None)
