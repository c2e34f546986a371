"""The chat model asked whether its own answer is supported, right after answering:
its share of yes read from the real model's logits, the answer's cache reused, and the
verdict following the floor."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from fastapi.testclient import TestClient

from app.chat.passage import UNSURE_INTRO
from app.chat.self_check import QUESTION as JUDGE
from app.chat.self_check import self_check, self_check_floor
from app.components import Components
from app.llm.catalog import CATALOG, DEFAULT_MODEL
from app.llm.engine import NO, YES, PromptTooLong
from app.main import create_app
from tests.llm.test_engine_load import small_engine
from tests.llm.test_token_logprobs import fresh_logits
from tests.telemetry.test_observability import QUESTION


def test_the_share_is_read_from_the_logits_after_the_answer_s_cache() -> None:
    engine = small_engine(repeat_penalty=1.0)
    try:
        chat = [{"role": "user", "content": "What is the capital of France?"}]
        prompt = engine.format(chat)
        generation = engine.stream(prompt, max_tokens=16, temperature=0.0)

        async def answer() -> str:
            return "".join([piece async for piece in generation])

        text = asyncio.run(answer())
        judged = engine.format(
            [*chat, {"role": "assistant", "content": text}, {"role": "user", "content": JUDGE}]
        )
        held = engine.cached_tokens(judged)
        assert held >= len(prompt.tokens)  # the answer's prompt (and answer) are held
        share = asyncio.run(engine.yes_share(judged, deadline=time.monotonic() + 60))
        assert share is not None
        assert 0.0 < share < 1.0

        # The same prompt evaluated afresh, the share by hand.
        row = fresh_logits(engine, judged.tokens)

        def mass(words: tuple[str, ...]) -> float:
            ids = set()
            for w in words:
                t = engine._llm.tokenize(w.encode(), add_bos=False, special=False)
                if len(t) == 1:
                    ids.add(t[0])
            return sum(math.exp(float(row[i]) - float(row.max())) for i in ids)

        direct = mass(YES) / (mass(YES) + mass(NO))
        assert abs(direct - share) < 0.02  # cached vs fresh rounding
    finally:
        engine.close()


def ask(components: Components, **rag: object) -> dict[str, object]:
    update = {
        "grounding_threshold": 0.0,
        "check_terms": False,
        "ungrounded_action": "passages",
        **rag,
    }
    settings = components.settings.model_copy(
        update={"rag": components.settings.rag.model_copy(update=update)}
    )
    with TestClient(create_app(settings, components.using(settings=settings))) as client:
        body: dict[str, object] = client.post(
            "/api/chat", json={"question": QUESTION, "stream": False}
        ).json()
    return body


def test_below_the_floor_the_answer_gives_way_to_the_passage(components: Components) -> None:
    """A floor above any share: the model's answer, grounded by every other check, is
    judged ungrounded and the passage is shown; at 0, it stands, the share reported."""
    flagged = ask(components, self_check=1.01)
    checks = flagged["checks"]
    assert isinstance(checks, dict)
    assert 0.0 < checks["self_check"] < 1.0
    assert flagged["grounded"] is False
    assert checks["replaced_by"] == "passage"
    # Flagged for the model's doubt alone: the lead-in says so, not "unsupported".
    assert checks["flagged_by"] == ["self_check"]
    assert str(flagged["answer"]).startswith(UNSURE_INTRO)
    kept = ask(components, self_check=0.0)
    checks = kept["checks"]
    assert isinstance(checks, dict)
    assert kept["grounded"] is True
    assert "self_check" in checks
    assert "flagged_by" not in checks
    never = ask(components, self_check=None)
    checks = never["checks"]
    assert isinstance(checks, dict)
    assert "self_check" not in checks
    assert never["grounded"] is True


def test_auto_is_the_floor_measured_for_that_very_file() -> None:
    default = CATALOG[DEFAULT_MODEL]
    assert default.self_check_floor is not None
    assert self_check_floor("auto", default.sha256) == default.self_check_floor
    assert self_check_floor("auto", "0" * 64) is None
    assert self_check_floor(0.3, None) == 0.3
    assert self_check_floor(None, default.sha256) is None


def test_a_judge_prompt_past_the_context_leaves_the_answer_alone() -> None:
    """An answer that fills the context leaves no room for the question: the engine
    refuses the prompt (PromptTooLong, its place given back), and the self-check says
    nothing instead of failing an answer already written."""
    engine = small_engine(n_ctx=512)
    try:
        chat = [{"role": "user", "content": "Say something."}]
        prompt = engine.format(chat)
        long_answer = "word " * 700
        share = asyncio.run(self_check(engine, prompt, long_answer, time.monotonic() + 60))
        assert share is None
        assert engine.in_flight == 0
        too_long = engine.format([{"role": "user", "content": long_answer}])
        with pytest.raises(PromptTooLong):
            asyncio.run(engine.yes_share(too_long, deadline=time.monotonic() + 60))
        assert engine.in_flight == 0
    finally:
        engine.close()
