"""The learnt prompt chunk (prefill_chunk=auto) against a step cost that follows a
line: a fixed part for the running answers' tokens plus a cost per prompt token. The
line stands in for llama.cpp so that the controller's arithmetic can be checked against
a known answer and a sudden slowdown; tests/llm/test_chunked_prefill.py runs it on the
real model."""

from __future__ import annotations

import pytest

from app.llm.chunk_sizer import FIRST_CHUNK, MIN_CHUNK, ChunkSizer


def settle(sizer: ChunkSizer, decode_s: float, per_token_s: float, steps: int = 30) -> None:
    for _ in range(steps):
        sizer.observe(sizer.chunk, decode_s + per_token_s * sizer.chunk)


def test_the_chunk_settles_where_a_step_lasts_the_target() -> None:
    sizer = ChunkSizer(0.25, n_batch=512)
    assert sizer.chunk == FIRST_CHUNK
    settle(sizer, decode_s=0.07, per_token_s=0.006)
    # (0.25 - 0.07) / 0.006 = 30 tokens.
    assert sizer.chunk == pytest.approx(30, abs=1)
    # A model (or a machine) 1.5 times slower per prompt token: two thirds of it.
    settle(sizer, decode_s=0.07, per_token_s=0.009)
    assert sizer.chunk == pytest.approx(20, abs=1)
    # A fast machine: the chunk grows, up to one batch.
    settle(sizer, decode_s=0.01, per_token_s=0.0001)
    assert sizer.chunk == 512


def test_the_chunk_never_falls_below_the_floor() -> None:
    """Running answers alone take longer than the target (many streams on a slow
    machine): prompts still advance by MIN_CHUNK tokens a step, never stall."""
    sizer = ChunkSizer(0.1, n_batch=512)
    settle(sizer, decode_s=0.3, per_token_s=0.005)
    assert sizer.chunk == MIN_CHUNK
