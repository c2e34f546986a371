"""Retrieval evaluation: recall@k and MRR over questions with known source files."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from app.evaluation.cases import QACase, contains_expected, source_matches
from app.rag.prompt import excerpt_block
from app.rag.retrieval import Retriever


@dataclass
class RetrievalReport:
    """Aggregate figures and the questions that missed."""

    questions: int = 0
    k: int = 5
    recall: float = 0.0
    recall_at_1: float = 0.0
    mrr: float = 0.0
    # Over the cases with expected phrases: the share whose phrases are in the excerpts
    # the prompt would get, and the mean size of those excerpts in characters.
    answer_in_prompt: float | None = None
    context_chars: float | None = None
    misses: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return asdict(self)


def ranked_sources(retriever: Retriever, question: str, k: int) -> list[str]:
    """The first k distinct source files among the nearest chunks."""
    seen: list[str] = []
    for hit in retriever.search_sync(question, k=k * 4):
        source = str(hit.metadata.get("source", ""))
        if source not in seen:
            seen.append(source)
        if len(seen) == k:
            break
    return seen


def evaluate_retrieval(retriever: Retriever, cases: list[QACase], *, k: int) -> RetrievalReport:
    """Recall@k (a relevant file among the first k) and MRR@k over the in-scope cases."""
    judged = [c for c in cases if not c.out_of_scope]
    report = RetrievalReport(questions=len(judged), k=k)
    hits = first = reciprocal = 0.0
    for case in judged:
        ranked = ranked_sources(retriever, case.question, k)
        rank = next(
            (i for i, s in enumerate(ranked, start=1) if source_matches(s, case.sources)), None
        )
        if rank is None:
            report.misses.append(
                {"question": case.question, "expected": case.sources, "got": ranked[:3]}
            )
            continue
        hits += 1
        first += rank == 1
        reciprocal += 1 / rank
    if judged:
        report.recall = hits / len(judged)
        report.recall_at_1 = first / len(judged)
        report.mrr = reciprocal / len(judged)
    phrased = [c for c in judged if c.has_expectations]
    if phrased:
        blocks = [excerpt_block(retriever.context_sync(c.question)) for c in phrased]
        found = sum(bool(contains_expected(c, b)) for c, b in zip(phrased, blocks, strict=True))
        report.answer_in_prompt = found / len(phrased)
        report.context_chars = sum(map(len, blocks)) / len(phrased)
    return report
