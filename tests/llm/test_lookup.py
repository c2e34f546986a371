"""Prompt-lookup decoding: drafts from the prompt, and with the real model the same
greedy text in fewer decode steps when the answer quotes its prompt."""

from __future__ import annotations

import asyncio

from app.llm.engine import LlamaEngine
from app.llm.lookup import PromptLookup
from tests.llm.test_engine_load import small_engine

PASSAGE = (
    "To roll back the chat model after a bad upgrade, run docchat models rollback; "
    "the previous release is activated through the same gate and hot swap, and the "
    "answers already stored keep the release that wrote them."
)


def test_a_draft_is_what_followed_the_last_occurrence_of_the_tail() -> None:
    lookup = PromptLookup([1, 2, 3, 4, 5, 9, 1, 2, 3, 6, 7])
    assert lookup.draft(4) == []  # the tail 3, 6, 7 occurs nowhere else
    for token in (1, 2, 3):
        lookup.add(token)
    assert lookup.draft(3) == [6, 7, 1]  # the latest 1, 2, 3 was followed by 6, 7
    assert lookup.draft(0) == []
    lookup.add(8)  # 2, 3, 8 is new
    assert lookup.draft(3) == []


async def answer(engine: LlamaEngine, text: str) -> tuple[str, int]:
    prompt = engine.format([{"role": "user", "content": text}])
    before = engine.scheduler.steps
    generation = engine.stream(prompt, max_tokens=48, temperature=0.0)
    written = "".join([piece async for piece in generation])
    return written, engine.scheduler.steps - before


def test_lookup_writes_the_same_greedy_text_in_fewer_steps() -> None:
    plain = small_engine(parallel=2, lookup_tokens=0)
    lookup = small_engine(parallel=2, lookup_tokens=8)
    ask = f"Repeat this passage word for word:\n\n{PASSAGE}"
    try:
        text, steps = asyncio.run(answer(plain, ask))
        fast_text, fast_steps = asyncio.run(answer(lookup, ask))
        other, _ = asyncio.run(answer(plain, "Name three colours."))
        other_fast, _ = asyncio.run(answer(lookup, "Name three colours."))
    finally:
        plain.close()
        lookup.close()
    assert "rollback" in text  # the model does quote
    assert fast_text == text
    assert other_fast == other  # and where it does not, nothing changes either
    assert fast_steps < steps * 0.7
