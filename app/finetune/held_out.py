"""How close a model's answers come to the approved ones of a dataset's held-out split.

Each held-out example is asked exactly as it was curated (its stored passages, not a
fresh retrieval, so the figure measures the model, not the index) with greedy
decoding; the answer is compared with the approved one by the cosine of their
embeddings. The report gives the mean and the share of answers at least CLOSE to the
approved one; the adapter gate compares them with the base model's on the same rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from app.llm.base import ChatEngine

# Cosine between an answer's and the approved answer's embeddings from which they count
# as saying the same (all-MiniLM-L6-v2: paraphrases score about 0.8 and above).
CLOSE = 0.8


async def _answer(engine: ChatEngine, messages: list[dict[str, str]], max_tokens: int) -> str:
    prompt = engine.format(messages)
    generation = engine.stream(prompt, max_tokens=max_tokens, temperature=0.0)
    try:
        return "".join([piece async for piece in generation]).strip()
    finally:
        await generation.aclose()


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
            answers.append(await _answer(engine, row[:-1], max_tokens))
            progress(len(answers))
        return answers

    answers = asyncio.run(run()) if rows else []
    approved = [row[-1]["content"] for row in rows]
    scores = (
        [_cosine(a, b) for a, b in zip(embed(answers), embed(approved), strict=True)]
        if rows
        else []
    )
    return {
        "examples": len(rows),
        "similarity": round(sum(scores) / len(scores), 4) if scores else None,
        "close": round(sum(s >= CLOSE for s in scores) / len(scores), 4) if scores else None,
        "answers": [
            {"answer": a, "approved": b, "similarity": round(s, 4)}
            for a, b, s in zip(answers, approved, scores, strict=True)
        ],
    }


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = (sum(x * x for x in a) ** 0.5) * (sum(y * y for y in b) ** 0.5)
    return dot / norm if norm else 0.0
