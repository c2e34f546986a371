"""Benchmark: aggregate decode throughput of the batching engine with 1, 2, 4 and 8
concurrent streams, as ratios to one stream (target: at least 2x at 4 streams on the
2-core machine). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/concurrency.py [--tokens 96] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from app.llm.engine import GenerationStats, LlamaEngine
from app.llm.provision import default_chat_model
from app.settings import LLMSettings

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


async def run(engine: LlamaEngine, streams: int, tokens: int) -> tuple[float, int]:
    """Seconds and tokens produced when `streams` answers decode at once."""
    prompts = [
        engine.format([{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}])
        for i in range(streams)
    ]

    async def one(index: int) -> int:
        stats = GenerationStats()
        async for _ in engine.stream(prompts[index], max_tokens=tokens, stats=stats):
            pass
        return stats.completion_tokens

    started = time.perf_counter()
    produced = await asyncio.gather(*(one(i) for i in range(streams)))
    return time.perf_counter() - started, sum(produced)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=96, help="tokens per answer (at most)")
    parser.add_argument("--rounds", type=int, default=2, help="repeats per level (best kept)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    # Sampling (not greedy) keeps answers from ending early on an end-of-turn token.
    engine = LlamaEngine(
        LLMSettings(parallel=8, n_ctx=1024, temperature=0.8, max_tokens=args.tokens),
        default_chat_model(),
    )
    asyncio.run(run(engine, 1, 8))  # warm-up
    rates: dict[int, float] = {}
    for streams in (1, 2, 4, 8):
        best = 0.0
        for _ in range(args.rounds):
            seconds, produced = asyncio.run(run(engine, streams, args.tokens))
            best = max(best, produced / seconds)
        rates[streams] = best
        print(
            f"{streams} stream(s): {best:6.1f} tokens/s aggregate "
            f"({best / rates[1]:.2f}x one stream)"
        )
    engine.close()
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    str(k): {"tokens_per_s": round(v, 1), "ratio": round(v / rates[1], 2)}
                    for k, v in rates.items()
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
