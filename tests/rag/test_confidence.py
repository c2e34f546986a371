"""The model's confidence in the verdict: an answer the model wrote unsure of is judged
ungrounded when a floor applies, and the floor is the catalog model's own."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace

import pytest

from app.components import Components
from app.llm.base import GenerationStats
from app.llm.catalog import CATALOG, DEFAULT_MODEL
from app.rag.confidence import confidence_floor
from app.store.vectors import Hit
from tests.rag.test_terms import PREFILL, STREAMING

RIGHT = (
    "A new question's prompt is read in chunks of this size, interleaved with the "
    "running answers' tokens, so they keep streaming: set `llm.prefill_chunk`."
)


def stats(probability: float, n: int = 20) -> GenerationStats:
    return GenerationStats(token_logprobs=[math.log(probability)] * n)


def test_an_unsure_answer_is_ungrounded_and_a_sure_one_is_not(components: Components) -> None:
    chat = components.chat
    chat.rag = chat.rag.model_copy(update={"min_confidence": 0.7})
    hits = [Hit("prefill", PREFILL, 0.6, {"source": "configuration.md"})]
    sure = asyncio.run(chat.check_grounding(RIGHT, hits, STREAMING, False, stats(0.9)))
    assert sure.grounded is True
    assert sure.flagged_by is None
    assert sure.confidence is not None
    assert math.isclose(sure.confidence, 0.9, abs_tol=1e-3)
    unsure = asyncio.run(chat.check_grounding(RIGHT, hits, STREAMING, False, stats(0.5)))
    assert unsure.grounded is False
    assert unsure.grounding_score == sure.grounding_score  # only the confidence differs
    assert unsure.flagged_by == ["confidence"]
    assert unsure.unsure_only  # what replaces it says the model was unsure, not the docs
    # No floor: the same unsure answer passes, its confidence still reported.
    chat.rag = chat.rag.model_copy(update={"min_confidence": None})
    off = asyncio.run(chat.check_grounding(RIGHT, hits, STREAMING, False, stats(0.5)))
    assert off.grounded is True
    assert off.confidence is not None
    # A remote engine reports no token probabilities: nothing to judge, nothing flagged.
    chat.rag = chat.rag.model_copy(update={"min_confidence": 0.7})
    remote = asyncio.run(chat.check_grounding(RIGHT, hits, STREAMING, False, GenerationStats()))
    assert remote.grounded is True
    assert remote.confidence is None


def test_auto_is_the_floor_measured_for_that_very_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """The labels gave the default model a confidence floor (docs/answer-quality.md),
    its BF16 file the same; auto applies a catalog file's floor to it alone."""
    default = CATALOG[DEFAULT_MODEL]
    assert confidence_floor("auto", default.sha256) == 0.72
    assert confidence_floor("auto", CATALOG["qwen2.5-coder-0.5b-instruct-bf16"].sha256) == 0.72
    # The tests' model was not measured: no floor.
    assert confidence_floor("auto", CATALOG["smollm2-135m-instruct-q4_1"].sha256) is None
    measured = replace(default, confidence_floor=0.6)
    monkeypatch.setitem(CATALOG, DEFAULT_MODEL, measured)
    assert confidence_floor("auto", default.sha256) == 0.6
    assert confidence_floor("auto", "0" * 64) is None  # a model of the user's own
    assert confidence_floor("auto", None) is None
    assert confidence_floor(0.65, "0" * 64) == 0.65
    assert confidence_floor(None, default.sha256) is None
