"""A finished answer's cache kept for the follow-up: which sequence a prompt gets, that
a follow-up evaluates only its new tokens, and that its answer is the one it would get
from scratch (greedy) — with the real model."""

from __future__ import annotations

import asyncio
import time

from app.chat.events import Finished
from app.chat.question import Question
from app.components import Components
from app.llm.engine import LlamaEngine
from app.llm.kept import MIN_REUSE, KeptSequences
from tests.llm.test_engine_load import small_engine

SYSTEM = {"role": "system", "content": "You answer questions about widgets. Be brief."}
FIRST = "What is a widget server? Explain it in two sentences for a new user of it."
SECOND = "And how do I start one on port 8080?"


def test_a_prompt_gets_the_free_sequence_sharing_its_longest_start() -> None:
    kept = KeptSequences([1, 2, 3], max_age_s=60)
    a, b = list(range(100)), list(range(1000, 1040))
    for tokens in (a, b):
        seq, held = kept.take(tokens)
        assert held == 0  # nothing kept yet
        kept.give_back(seq, tokens)
    assert kept.kept == 2
    seq, held = kept.take([*range(60), 7, 7])  # shares 60 with a, nothing with b
    assert (seq, held) == (1, 60)
    assert kept.held([*range(1000, 1020), 5]) == 20  # b's, from any thread
    # All of it is held: all but the last token, whose logits must be computed.
    kept.give_back(1, a)
    assert kept.take(a) == (1, 99)


def test_below_the_minimum_an_empty_sequence_then_the_oldest_cache_is_taken() -> None:
    kept = KeptSequences([1, 2], max_age_s=60)
    s1, _ = kept.take(list(range(40)))
    kept.give_back(s1, list(range(40)))
    short = [*range(MIN_REUSE - 1), 999]
    assert kept.take(short) == (2, 0)  # the empty one, not a too-short reuse
    kept.give_back(2, [5] * 30)
    time.sleep(0.01)
    assert kept.take([9] * 30) == (1, 0)  # no match: the one left longest ago


def test_caches_older_than_the_age_are_forgotten() -> None:
    kept = KeptSequences([1, 2], max_age_s=0.05)
    seq, _ = kept.take(list(range(40)))
    kept.give_back(seq, list(range(40)))
    assert kept.expired() == []
    time.sleep(0.1)
    assert kept.expired() == [seq]
    assert kept.held(list(range(40))) == 0


async def answer(engine: LlamaEngine, messages: list[dict[str, str]]) -> tuple[str, int]:
    generation = engine.stream(engine.format(messages), max_tokens=32, temperature=0.0)
    text = "".join([piece async for piece in generation])
    return text, generation.stats.prefix_reused


def test_a_follow_up_evaluates_only_its_new_tokens_and_answers_the_same() -> None:
    """The second turn starts with the first turn's prompt and answer: the engine holds
    them, so it reuses them (its reuse counter says so), and its greedy answer starts
    as the one written by an engine that kept nothing (caches expire at once). Only
    starts: the prompt is evaluated in other pieces, and with the AVX-512 kernels the
    float rounding of other pieces can turn a near tie the other way some dozens of
    tokens in (as batching does, docs/performance.md); a cache holding the wrong cells
    would change the answer from its first words."""
    warm = small_engine(parallel=1, cache_sequences=1)
    cold = small_engine(parallel=1, cache_sequences=0, cache_max_age_s=1e-6)
    try:
        first = [SYSTEM, {"role": "user", "content": FIRST}]
        reply, _ = asyncio.run(answer(warm, first))
        assert reply
        follow = [*first, {"role": "assistant", "content": reply}]
        follow.append({"role": "user", "content": SECOND})
        n_first = warm.format(first).n_tokens
        assert warm.cached_tokens(warm.format(follow)) >= n_first
        text, reused = asyncio.run(answer(warm, follow))
        assert reused >= n_first  # the first prompt and (most of) its answer
        asyncio.run(answer(cold, first))
        cold_text, cold_reused = asyncio.run(answer(cold, follow))
        assert cold_reused < MIN_REUSE  # nothing kept: evaluated from its start
        assert len(text) >= 24
        assert text[:24] == cold_text[:24]
    finally:
        warm.close()
        cold.close()


def test_a_conversation_s_second_turn_is_sent_warm(components: Components) -> None:
    """Through the chat service: the follow-up's prompt is the first turn's prompt (its
    excerpts included), its answer and the new question; the engine reuses them."""
    chat = components.chat

    async def ask(text: str, conversation_id: str | None) -> Finished:
        answer = await chat.open(Question(text, conversation_id=conversation_id))
        result = await answer.result()
        assert isinstance(result, Finished), result
        return result

    first = asyncio.run(ask("What port does the widget server listen on by default?", None))
    assert first.stats is not None
    assert first.conversation_id is not None
    n_first = first.stats.prompt_tokens
    second = asyncio.run(ask("And how do I change it?", first.conversation_id))
    assert second.stats is not None
    assert second.stats.prefix_reused >= n_first
    assert chat.warm.recall(first.conversation_id) is not None
