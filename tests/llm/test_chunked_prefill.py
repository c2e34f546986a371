"""Chunked prompt evaluation: a new prompt is read a chunk per decode step, beside the
answers already streaming — with the real model."""

from __future__ import annotations

import asyncio
import itertools
import time

from app.llm.base import Prompt
from app.llm.engine import GenerationStats, LlamaEngine
from tests.llm.test_engine_load import small_engine

# The engines here allow an hour per answer (request_timeout_s): on a busy shared
# machine a running answer can outlive the default deadline before the test ends it.
# About 600 tokens of prompt: more than one chunk many times over, and more than a
# batch of the tests' n_batch (256), so the unchunked path splits it too.
MANUAL = " ".join(
    f"Section {i}: the widget server keeps the backups of shard {i} in /var/lib/widget/{i} "
    f"and rotates their logs every {i % 7 + 1} days."
    for i in range(18)
)
SHORT = ["Name three colors.", "What is Python?", "Count to five."]
LONG = [
    MANUAL + "\nWhere are the backups of shard 7 kept?",
    MANUAL + "\nHow often are the logs of shard 3 rotated?",
]


def prompt_of(engine: LlamaEngine, question: str) -> Prompt:
    return engine.format([{"role": "user", "content": question}])


async def answer(engine: LlamaEngine, question: str, max_tokens: int = 16) -> str:
    generation = engine.stream(prompt_of(engine, question), max_tokens=max_tokens)
    return "".join([piece async for piece in generation])


async def beside_a_stream(engine: LlamaEngine, questions: list[str]) -> list[str]:
    """Each question asked while another answer is already streaming, so its prompt is
    evaluated in chunks between that answer's tokens (unless chunking is off)."""
    running = engine.stream(
        prompt_of(engine, "Tell me a long story."), max_tokens=1500, ignore_eos=True
    )
    await anext(running)  # the stream is decoding now, and goes on past them all
    answers = [await answer(engine, q) for q in questions]
    assert engine.scheduler.active  # it was still decoding
    await running.aclose()
    return answers


def test_chunked_prompts_give_the_same_greedy_answers() -> None:
    """Chunks of 48 tokens against whole prompts (prefill_chunk=0, the old way): the
    same greedy text for short and long prompts, asked alone, beside a running answer,
    and all at once."""
    # One long prompt: the other costs two minutes of CI and reads the same way.
    questions = SHORT[:2] + LONG[:1]
    runs: dict[int, tuple[list[str], list[str], list[str]]] = {}
    for chunk in (0, 48):
        engine = small_engine(
            parallel=4, n_batch=256, prefill_chunk=chunk, max_tokens=16, request_timeout_s=3600
        )

        async def run(engine: LlamaEngine = engine) -> tuple[list[str], list[str], list[str]]:
            alone = [await answer(engine, q) for q in questions]
            beside = await beside_a_stream(engine, questions)
            together = list(await asyncio.gather(*(answer(engine, q) for q in questions)))
            return alone, beside, together

        try:
            runs[chunk] = asyncio.run(run())
            assert engine.scheduler.steps > 0
        finally:
            engine.close()
    whole, chunked = runs[0], runs[48]
    assert chunked[0] == whole[0]  # alone
    assert chunked[1] == whole[1]  # beside a running answer: evaluated in chunks
    assert chunked[2] == whole[2]  # four admitted at once
    assert all(whole[0])
    # Short prompts: the same answer in a batch as alone, chunked or not.
    assert chunked[1][:2] == chunked[0][:2]


async def stream_during_admission(
    engine: LlamaEngine, long_prompt: Prompt
) -> tuple[list[float], float, float, GenerationStats]:
    """A running answer's token times, when the long prompt was submitted, when its
    first token came, and the long answer's stats."""
    running = engine.stream(
        prompt_of(engine, "Tell me a long story."), max_tokens=1000, ignore_eos=True
    )
    times: list[float] = []
    streaming = asyncio.Event()

    async def follow() -> None:
        async for _ in running:
            times.append(time.monotonic())
            if len(times) >= 5:
                streaming.set()

    follower = asyncio.create_task(follow())
    await streaming.wait()
    submitted = time.monotonic()
    newcomer = engine.stream(long_prompt, max_tokens=4)
    await anext(newcomer)
    first_token = time.monotonic()
    async for _ in newcomer:
        pass
    follower.cancel()
    await asyncio.gather(follower, return_exceptions=True)
    return times, submitted, first_token, newcomer.stats


def test_a_running_stream_keeps_its_tokens_while_a_long_prompt_is_read() -> None:
    """The longest pause of a running answer while a long prompt is admitted stays
    below what that prompt's evaluation costs (which is the pause every stream took when
    prompts were evaluated whole): a ratio measured in the same test, not a time. The
    chunk is sized by the engine itself (prefill_chunk=auto), from the steps it times."""
    engine = small_engine(
        parallel=2, prefill_chunk="auto", stream_gap_ms=100, request_timeout_s=3600
    )
    sizer = engine.scheduler.chunk_sizer
    first_chunk = sizer.learnt
    try:
        long_prompt = prompt_of(engine, LONG[0])
        before = engine.prompt_eval_seconds(long_prompt)
        times, submitted, first_token, stats = asyncio.run(
            stream_during_admission(engine, long_prompt)
        )
        # Measured around the run: on a shared machine speed drifts from minute to minute.
        evaluation = (before + engine.prompt_eval_seconds(long_prompt)) / 2
    finally:
        engine.close()
    during = [t for t in times if submitted <= t <= first_token]
    edges = [submitted, *during, first_token]
    longest = max(b - a for a, b in itertools.pairwise(edges))
    assert stats.completion_tokens > 0
    assert len(during) >= 5, (len(during), evaluation)  # it streamed meanwhile
    # Many chunks: a pause is one chunk's worth, far below the whole prompt.
    assert longest < evaluation, (longest, evaluation, len(long_prompt.tokens))
    assert sizer.observed > 0  # it timed mixed steps
    # And learnt from them. Unrounded: a learnt chunk may round back to the first one.
    assert sizer.learnt != first_chunk


def test_cancelling_mid_prompt_frees_the_slot() -> None:
    """A request that leaves while its prompt is being read in chunks gives its slot back
    at the next step; the next request takes it while the running answer goes on."""
    engine = small_engine(parallel=2, prefill_chunk=8, request_timeout_s=3600)
    scheduler = engine.scheduler

    async def run() -> None:
        running = engine.stream(
            prompt_of(engine, "Tell me a long story."), max_tokens=1000, ignore_eos=True
        )
        await anext(running)
        leaving = engine.stream(prompt_of(engine, LONG[1]), max_tokens=8)
        waiting = asyncio.create_task(anext(leaving))  # submits it, waits for a token
        for _ in range(500):
            if scheduler.prefilling and scheduler.prefilling[0].evaluated > 16:
                break
            await asyncio.sleep(0.01)
        job = scheduler.prefilling[0]
        assert 0 < job.evaluated < len(job.tokens)  # mid-prompt
        waiting.cancel()  # the client goes away
        await asyncio.gather(waiting, return_exceptions=True)
        await leaving.aclose()
        for _ in range(500):
            if not scheduler.prefilling and engine.running == 1:
                break
            await asyncio.sleep(0.01)
        assert not scheduler.prefilling
        assert engine.running == 1  # the running answer alone
        assert len(scheduler.free) == engine.context.n_seqs - 1  # the running one's is held
        assert leaving.stats.finish_reason == "cancelled"
        assert leaving.stats.completion_tokens == 0
        assert engine.in_flight == 1  # its ticket was given back
        generation = engine.stream(prompt_of(engine, "Say hi."), max_tokens=4)
        text = "".join([piece async for piece in generation])
        assert text
        # It got the freed slot: the other one is still held by the running answer.
        assert engine.scheduler.active
        await running.aclose()

    try:
        asyncio.run(run())
    finally:
        engine.close()
