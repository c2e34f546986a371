"""Benchmark: aggregate decode throughput of the batching engine with 1, 2, 4 and 8
concurrent streams, as ratios to one stream (target: at least 2x at 4 streams on the
2-core machine), next to llama.cpp's own ceiling measured on the engine's very context in
the same process: `llama_decode` steps of the same batch sizes with no sampling, no
detokenizing and no event loop. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/concurrency.py [--tokens 96] [--rounds 3] [--model FILE.gguf]

Both count decode steps only (prompt evaluation outside). Rounds are interleaved
(1, 2, 4, 8, 1, 2, ...) and the median is kept, so a slow spell of a shared machine
touches every level alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from pathlib import Path

from app.llm.batching import BatchedContext
from app.llm.engine import LlamaEngine
from app.llm.provision import small_chat_model
from app.settings import LLMSettings

LEVELS = (1, 2, 4, 8)
QUESTIONS = [
    "Explain what a widget server does.",
    "Describe how to back up a database.",
    "List some ways to speed up a web application.",
    "What is continuous integration?",
    "Explain what an API key is for.",
    "Describe the parts of a URL.",
    "What is a vector database used for?",
    "Explain how HTTP caching works.",
]


def cpu_model() -> str:
    """The CPU's name: figures only compare on the same kind of machine."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


async def engine_rate(engine: LlamaEngine, streams: int, tokens: int) -> float:
    """Aggregate decode tokens/s of `streams` answers through the engine, counted while
    all of them decode: from the last first token to the first last token (prompt
    evaluation, which the engine does one request at a time, falls outside). Answers
    run their full length (`ignore_eos`), so none drops out early."""
    prompts = [
        engine.format([{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}])
        for i in range(streams)
    ]

    async def one(index: int) -> list[float]:
        times = []  # when each piece arrived; a piece is one token for English text
        async for _ in engine.stream(prompts[index], max_tokens=tokens, ignore_eos=True):
            times.append(time.perf_counter())
        return times

    arrivals = await asyncio.gather(*(one(i) for i in range(streams)))
    start = max(times[0] for times in arrivals)
    end = min(times[-1] for times in arrivals)
    produced = sum(1 for times in arrivals for t in times if start < t <= end)
    return produced / (end - start)


def decode_rate(ctx: BatchedContext, streams: int, tokens: int, prompt: list[int]) -> float:
    """Aggregate tokens/s of `tokens` bare `llama_decode` steps of `streams` sequences
    (1..streams) after each evaluated `prompt`: no sampling, detokenizing or event loop.
    Runs on the calling thread, which must own `ctx`."""
    seqs = list(range(1, streams + 1))
    for seq in seqs:
        ctx.free_seq(seq)
        ctx.prefill(seq, prompt, 0)
    pos = len(prompt)
    began = time.perf_counter()
    for step in range(tokens):
        # Any token will do: the cost of a step does not depend on which.
        ctx.decode([(prompt[step % len(prompt)], pos + step, seq, True) for seq in seqs])
    elapsed = time.perf_counter() - began
    for seq in seqs:
        ctx.free_seq(seq)
    return streams * tokens / elapsed


def ceiling_rate(engine: LlamaEngine, streams: int, tokens: int) -> float:
    """`decode_rate` on the engine's own context, run by its worker thread while no
    request is in flight: what llama.cpp alone allows."""
    prompt = engine.format([{"role": "user", "content": QUESTIONS[0]}]).tokens
    rate: float = engine.scheduler.call(
        lambda: decode_rate(engine.context, streams, tokens, prompt)
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=96, help="tokens per answer (at most)")
    parser.add_argument("--rounds", type=int, default=3, help="repeats per level (median kept)")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads")
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default SmolLM2)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model = args.model or small_chat_model()
    # Sampling (not greedy) keeps answers from ending early on an end-of-turn token.
    engine = LlamaEngine(
        LLMSettings(
            parallel=max(LEVELS),
            n_ctx=1024,
            temperature=0.8,
            max_tokens=args.tokens,
            n_threads=args.threads,
        ),
        model,
    )
    print(f"{model.name}, {engine.n_threads} threads, {cpu_model()}")
    asyncio.run(engine_rate(engine, 1, 8))  # warm-up
    runs: dict[str, dict[int, list[float]]] = {"engine": {}, "llama_decode": {}}
    for _ in range(args.rounds):
        for streams in LEVELS:
            runs["engine"].setdefault(streams, []).append(
                asyncio.run(engine_rate(engine, streams, args.tokens))
            )
            runs["llama_decode"].setdefault(streams, []).append(
                ceiling_rate(engine, streams, args.tokens)
            )
    engine.close()
    report: dict[str, dict[str, dict[str, float]]] = {}
    for name, levels in runs.items():
        medians = {n: statistics.median(rates) for n, rates in levels.items()}
        report[name] = {
            str(n): {"tokens_per_s": round(r, 1), "ratio": round(r / medians[1], 2)}
            for n, r in medians.items()
        }
    print("streams | engine tok/s (ratio) | llama_decode alone tok/s (ratio) | engine/alone")
    for n in LEVELS:
        e, c = report["engine"][str(n)], report["llama_decode"][str(n)]
        print(
            f"{n:7d} | {e['tokens_per_s']:7.1f} ({e['ratio']:.2f}x) | "
            f"{c['tokens_per_s']:7.1f} ({c['ratio']:.2f}x) | "
            f"{e['tokens_per_s'] / c['tokens_per_s']:.0%}"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"model": model.name, "cpu": cpu_model(), **report}, indent=2)
        )


if __name__ == "__main__":
    main()
