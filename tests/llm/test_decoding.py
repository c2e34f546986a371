"""Decoding: an answer stuck in a loop ends early instead of running to max_tokens."""

from __future__ import annotations

import asyncio

from app.llm.batching import looping
from app.llm.engine import LlamaEngine
from tests.llm.test_engine_load import small_engine


def test_a_block_repeated_three_times_is_a_loop() -> None:
    prose = list(range(200))
    block = [7, 8, 9, 10, 11, 12, 13, 14, 15]
    assert looping(prose + block * 3, 3)
    assert not looping(prose + block * 2, 3)  # twice may be meant
    assert not looping(prose + block * 3 + [99], 3)  # it moved on
    assert not looping([1, 2, 3] * 5, 3)  # a short run: not yet three blocks of 8
    assert looping([5] * 24, 3)


def answer(engine: LlamaEngine, request: str) -> tuple[str, str, int]:
    prompt = engine.format([{"role": "user", "content": request}])
    generation = engine.stream(prompt, max_tokens=300)

    async def run() -> str:
        return "".join([piece async for piece in generation])

    text = asyncio.run(run())
    stats = generation.stats
    return text, stats.finish_reason or "", stats.completion_tokens


def test_a_looping_answer_stops_at_the_third_copy() -> None:
    """SmolLM2, greedy and without its repetition penalty, falls into "I'm back. I'm
    back. ..." on this request: with the stop it ends after three copies of the block;
    without it, it writes until max_tokens."""
    request = "Repeat after me: backup backup backup backup backup backup"
    stopping = small_engine(stop_repeats=3, repeat_penalty=1.0)
    endless = small_engine(stop_repeats=0, repeat_penalty=1.0)
    try:
        text, reason, tokens = answer(stopping, request)
        plain_text, plain_reason, plain_tokens = answer(endless, request)
    finally:
        stopping.close()
        endless.close()
    assert plain_reason == "length", plain_text[-200:]  # the precondition: it loops
    assert reason == "repetition"
    assert tokens < plain_tokens
    assert plain_text.startswith(text[:40])
