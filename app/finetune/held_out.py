"""How close a model's answers come to the approved ones of a dataset's held-out split.

Each held-out example is asked exactly as it was curated (its stored passages, not a
fresh retrieval, so the figure measures the model, not the index) with greedy
decoding; the answer is compared with the approved one by the cosine of their
embeddings. The report gives the mean and the share of answers at least CLOSE to the
approved one; the adapter gate compares them with the base model's on the same rows.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from app.llm.base import ChatEngine, greedy_text

# Token F1 from which an answer counts as saying what the approved one says.
CLOSE = 0.5
ARTICLES = {"a", "an", "the"}


def words(text: str) -> list[str]:
    """Lower-case words and numbers, articles left out (SQuAD's normalisation)."""
    return [w for w in re.findall(r"\w+", text.lower()) if w not in ARTICLES]


def token_f1(answer: str, approved: str) -> float:
    """Harmonic mean of the shares of each side's words found in the other."""
    ours, theirs = words(answer), words(approved)
    common = sum((Counter(ours) & Counter(theirs)).values())
    if not common:
        return 0.0
    precision, recall = common / len(ours), common / len(theirs)
    return 2 * precision * recall / (precision + recall)


def held_out_report(
    engine: ChatEngine,
    rows: list[list[dict[str, str]]],
    embed: Callable[[list[str]], list[list[float]]],
    *,
    max_tokens: int = 128,
    progress: Callable[[int], None] = lambda done: None,
) -> dict[str, Any]:
    """Ask every row (its last message is the approved answer) and compare."""

    async def run() -> list[str]:
        answers = []
        for row in rows:
            answers.append(await greedy_text(engine, row[:-1], max_tokens))
            progress(len(answers))
        return answers

    answers = asyncio.run(run()) if rows else []
    approved = [row[-1]["content"] for row in rows]
    pairs = zip(embed(answers), embed(approved), strict=True) if rows else iter(())
    cosines = [_cosine(a, b) for a, b in pairs]
    f1s = [token_f1(a, b) for a, b in zip(answers, approved, strict=True)]
    return {
        "examples": len(rows),
        "f1": _mean(f1s),
        "close": _mean([float(f >= CLOSE) for f in f1s]),
        "similarity": _mean(cosines),
        "answers": [
            {"answer": a, "approved": b, "f1": round(f, 4), "similarity": round(c, 4)}
            for a, b, f, c in zip(answers, approved, f1s, cosines, strict=True)
        ],
    }


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = (sum(x * x for x in a) ** 0.5) * (sum(y * y for y in b) ** 0.5)
    return dot / norm if norm else 0.0
