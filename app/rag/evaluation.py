"""Retrieval evaluation: recall@k and MRR over questions with known source files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.rag.retrieval import Retriever


@dataclass(frozen=True)
class QACase:
    """A question and the source files that answer it."""

    question: str
    sources: tuple[str, ...]


@dataclass
class RetrievalReport:
    """Aggregate figures and the questions that missed."""

    questions: int = 0
    recall: float = 0.0
    recall_at_1: float = 0.0
    mrr: float = 0.0
    misses: list[dict[str, Any]] = field(default_factory=list)


def read_qa_file(path: Path) -> list[QACase]:
    """Parse a JSONL file of {"question": str, "sources": [str, ...]}."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            cases.append(QACase(str(item["question"]), tuple(item["sources"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{path}:{number}: not a {{question, sources}} object ({exc})"
            ) from exc
    if not cases:
        raise ValueError(f"{path}: no questions")
    return cases


def matches(source: str, expected: tuple[str, ...]) -> bool:
    """A retrieved source is relevant when its path ends with an expected one."""
    source = source.split("#", 1)[0]
    return any(source == e or source.endswith("/" + e.lstrip("/")) for e in expected)


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
    """Recall@k (a relevant file among the first k) and MRR@k over all cases."""
    report = RetrievalReport(questions=len(cases))
    hits = first = reciprocal = 0.0
    for case in cases:
        ranked = ranked_sources(retriever, case.question, k)
        rank = next((i for i, s in enumerate(ranked, start=1) if matches(s, case.sources)), None)
        if rank is None:
            report.misses.append(
                {"question": case.question, "expected": case.sources, "got": ranked[:3]}
            )
            continue
        hits += 1
        first += rank == 1
        reciprocal += 1 / rank
    report.recall = hits / len(cases)
    report.recall_at_1 = first / len(cases)
    report.mrr = reciprocal / len(cases)
    return report
