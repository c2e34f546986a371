"""The engine reports the probability the model gave each token it wrote, and a greedy
token is the model's likeliest: the answer's confidence comes from the real model."""

from __future__ import annotations

import asyncio
import math

import llama_cpp as ll
import numpy as np

from app.llm.engine import LlamaEngine
from app.rag.confidence import confidence
from tests.llm.test_engine_load import small_engine


def written(engine: LlamaEngine, request: str) -> tuple[str, list[float], int]:
    prompt = engine.format([{"role": "user", "content": request}])
    generation = engine.stream(prompt, max_tokens=24, temperature=0.0)

    async def run() -> str:
        return "".join([piece async for piece in generation])

    text = asyncio.run(run())
    return text, generation.stats.token_logprobs, generation.stats.completion_tokens


def fresh_logits(engine: LlamaEngine, tokens: list[int]) -> np.ndarray:
    """The logits after `tokens`, evaluated afresh by llama.cpp in the engine's last
    slot (on its worker thread; the tests run the engine idle)."""

    def evaluate() -> np.ndarray:
        ctx = engine.context
        seq = ctx.n_parallel
        ctx.free_seq(seq)
        engine.scheduler.free.forget(seq)
        ctx.prefill(seq, tokens, 0)
        row = np.ctypeslib.as_array(ll.llama_get_logits_ith(ctx.ctx, -1), (ctx.n_vocab,))
        ctx.free_seq(seq)
        return row.copy()

    logits: np.ndarray = engine.scheduler.call(evaluate)
    return logits


def test_every_written_token_has_its_log_probability() -> None:
    engine = small_engine(repeat_penalty=1.0)
    try:
        text, logprobs, produced = written(engine, "What is the capital of France?")
        assert text.strip()
        assert len(logprobs) == produced > 0
        assert all(p <= 1e-6 for p in logprobs)
        sure = confidence(logprobs)
        assert sure is not None
        assert 0 < sure <= 1
        # Greedy without penalties: each token is the likeliest, so its probability is at
        # least 1 / vocabulary and, for the first one, equals the top of a fresh softmax.
        assert min(logprobs) > -math.log(engine.context.n_vocab)
    finally:
        engine.close()


def test_the_first_token_s_probability_matches_llama_cpp_s_own_logits() -> None:
    """The same prompt evaluated by llama.cpp directly: the first written token's
    probability is the softmax of the logits there (the engine's arithmetic, checked)."""
    engine = small_engine(repeat_penalty=1.0)
    try:
        prompt = engine.format([{"role": "user", "content": "Name a colour."}])
        _text, logprobs, _n = written(engine, "Name a colour.")

        row = fresh_logits(engine, prompt.tokens)
        top = float(row.max())
        expected = float(row.max()) - top - math.log(float(np.exp(row - top).sum()))
        assert abs(logprobs[0] - expected) < 1e-3
    finally:
        engine.close()


def test_confidence_is_the_geometric_mean_of_the_probabilities() -> None:
    assert confidence([]) is None
    assert math.isclose(confidence([math.log(0.5), math.log(0.5)]) or 0, 0.5)
    assert math.isclose(confidence([0.0, math.log(0.25)]) or 0, 0.5)
