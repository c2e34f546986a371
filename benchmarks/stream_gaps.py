"""Benchmark: how steadily running answers stream while new questions arrive.

Four users (`--users`) each ask `--questions` questions one after another, starting a
little apart, so new prompts keep arriving while the others' answers stream. Every
prompt is RAG-sized (about `--prompt-tokens` tokens of documentation excerpts taken from
docs/*.md, each question its own, after a system prompt cached the way docchat caches its
own) and every answer runs its full `--tokens` tokens. The same load runs once per
`--chunks` value of `llm.prefill_chunk` (0: each prompt evaluated whole, the scheduler
before chunking; N: N prompt tokens per decode step; auto: chunks sized by the engine
to keep a step near `--gap-ms`), in interleaved rounds on one
engine, so a slow spell of a shared machine touches every setting alike.

Reported per setting (median over rounds): the gap between consecutive tokens of an
answer that is already streaming (p50, p95, p99, max, share over 300 ms), the time to
first token of the questions (median, p95), and the total throughput (answer tokens of
all users / wall time, prompt evaluation included). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/stream_gaps.py [--model FILE.gguf] [--chunks 0,64]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import statistics
import time
from pathlib import Path

from concurrency import cpu_model  # this folder: scripts here run with it on sys.path

from app.llm.base import Prompt
from app.llm.engine import LlamaEngine
from app.llm.provision import small_chat_model
from app.settings import LLMSettings

SYSTEM = (
    "You are docchat, an assistant that answers questions about a product's "
    "documentation. Answer from the excerpts below only, and say so when they do not "
    "cover the question."
)
QUESTIONS = [
    "How do I change the port the server listens on?",
    "What happens when the wait queue is full?",
    "How are models swapped while the server answers?",
    "Which settings change the time to first token?",
    "How do I back up the data directory?",
    "What does the output guard check?",
    "How do I run docchat with a remote model server?",
    "What is the shared system prompt cache for?",
    "How are answers rated and curated?",
    "Where are the metrics exposed?",
    "How do I add an API key?",
    "What does the reindex command do?",
]
SLOW_GAP_S = 0.3


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def excerpts(engine: LlamaEngine, count: int, tokens: int) -> list[str]:
    """`count` different runs of documentation text of about `tokens` tokens each."""
    docs = sorted((Path(__file__).parents[1] / "docs").glob("*.md"))
    words = " ".join(p.read_text() for p in docs).split()
    step = max(1, int(tokens * 0.6))  # words; grown below until the tokens are there
    out = []
    for i in range(count):
        start = (i * 997) % max(1, len(words) - 4 * step)
        size = step
        text = " ".join(words[start : start + size])
        while engine.count_tokens(text) < tokens and start + size < len(words):
            size += 20
            text = " ".join(words[start : start + size])
        out.append(text)
    return out


def shared_prefix(engine: LlamaEngine) -> Prompt:
    """The system turn and user header every prompt starts with (as docchat's own)."""
    system = {"role": "system", "content": SYSTEM}
    a = engine.format([system, {"role": "user", "content": "A"}]).tokens
    b = engine.format([system, {"role": "user", "content": "Z"}]).tokens
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return Prompt("", a[:n], [])


async def one_round(
    engine: LlamaEngine, prompts: list[list[Prompt]], tokens: int, stagger_s: float
) -> dict[str, float]:
    """Every user asks its questions in turn; figures of the round."""
    gaps: list[float] = []
    firsts: list[float] = []
    produced = 0

    async def user(index: int) -> None:
        nonlocal produced
        await asyncio.sleep(index * stagger_s)
        for prompt in prompts[index]:
            asked = time.perf_counter()
            times: list[float] = []
            generation = engine.stream(prompt, max_tokens=tokens, ignore_eos=True)
            async for _ in generation:
                times.append(time.perf_counter())
            firsts.append(times[0] - asked)
            gaps.extend(b - a for a, b in itertools.pairwise(times))
            produced += generation.stats.completion_tokens

    began = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(len(prompts))))
    wall = time.perf_counter() - began
    return {
        "gap_p50_s": statistics.median(gaps),
        "gap_p95_s": percentile(gaps, 0.95),
        "gap_p99_s": percentile(gaps, 0.99),
        "gap_max_s": max(gaps),
        "gaps_over_300ms": sum(g > SLOW_GAP_S for g in gaps) / len(gaps),
        "ttft_p50_s": statistics.median(firsts),
        "ttft_p95_s": percentile(firsts, 0.95),
        "tokens_per_s": produced / wall,
        "wall_s": wall,
    }


def set_chunk(engine: LlamaEngine, chunk: str) -> None:
    """Change the engine's prompt chunk between rounds (on its worker thread); the learnt
    size of `auto` is kept from one of its rounds to the next, as a server keeps it."""
    value = chunk if chunk == "auto" else int(chunk)
    engine.scheduler.call(lambda: setattr(engine.scheduler, "prefill_chunk", value))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default SmolLM2)")
    parser.add_argument(
        "--chunks", default="0,auto", help="prefill_chunk values (0: whole; auto: learnt)"
    )
    parser.add_argument("--gap-ms", type=int, default=250, help="llm.stream_gap_ms for auto")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--questions", type=int, default=2, help="questions per user")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per answer")
    parser.add_argument("--prompt-tokens", type=int, default=800, help="excerpt size")
    parser.add_argument("--stagger", type=float, default=0.5, help="seconds between users")
    parser.add_argument("--rounds", type=int, default=2, help="repeats per setting")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    chunks = args.chunks.split(",")
    model = args.model or small_chat_model()
    engine = LlamaEngine(
        LLMSettings(
            parallel=args.users,
            n_ctx=2048,
            temperature=0.8,
            stop_repeats=0,
            max_tokens=args.tokens,
            request_timeout_s=3600,  # a busy shared machine is slow; figures, not deadlines
            n_threads=args.threads,
            stream_gap_ms=args.gap_ms,
        ),
        model,
    )
    engine.set_prefix(shared_prefix(engine))
    texts = excerpts(engine, args.users * args.questions, args.prompt_tokens)
    prompts = [
        [
            engine.format(
                [
                    {"role": "system", "content": SYSTEM},
                    {
                        "role": "user",
                        "content": f"Excerpts:\n{texts[u * args.questions + q]}\n\n"
                        f"Question: {QUESTIONS[(u * args.questions + q) % len(QUESTIONS)]}",
                    },
                ]
            )
            for q in range(args.questions)
        ]
        for u in range(args.users)
    ]
    sizes = [len(p.tokens) for user in prompts for p in user]
    evaluation = statistics.median(engine.prompt_eval_seconds(prompts[0][0]) for _ in range(3))
    print(
        f"{model.name}, {engine.n_threads} threads, {cpu_model()}; {args.users} users x "
        f"{args.questions} questions, prompts of {min(sizes)}-{max(sizes)} tokens, "
        f"answers of {args.tokens} tokens; one prompt alone evaluates in {evaluation:.2f} s"
    )
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in chunks}
    for index in range(args.rounds):
        for chunk in chunks:
            set_chunk(engine, chunk)
            figures = asyncio.run(one_round(engine, prompts, args.tokens, args.stagger))
            runs[chunk].append(figures)
            print(
                f"  round {index + 1} chunk {chunk}: gap p95 {figures['gap_p95_s']:.3f} s, "
                f"learnt chunk {engine.scheduler.chunk_sizer.chunk}, "
                f"max {figures['gap_max_s']:.2f} s, {figures['tokens_per_s']:.1f} tok/s",
                flush=True,
            )
    engine.close()
    report = {
        str(chunk): {key: statistics.median(r[key] for r in rs) for key in rs[0]}
        for chunk, rs in runs.items()
    }
    base = report[str(chunks[0])]
    print(
        "chunk | gap p50 | gap p95 | gap p99 | gap max | >300 ms | TTFT p50 | TTFT p95 | "
        f"tok/s | p95 / chunk {chunks[0]} | tok/s / chunk {chunks[0]}"
    )
    for chunk in chunks:
        r = report[str(chunk)]
        print(
            f"{chunk:>5} | {r['gap_p50_s']:.3f} | {r['gap_p95_s']:.3f} | {r['gap_p99_s']:.3f} | "
            f"{r['gap_max_s']:.2f} | {r['gaps_over_300ms']:.1%} | {r['ttft_p50_s']:.2f} | "
            f"{r['ttft_p95_s']:.2f} | {r['tokens_per_s']:.1f} | "
            f"{r['gap_p95_s'] / base['gap_p95_s']:.2f}x | "
            f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": model.name,
                    "cpu": cpu_model(),
                    "prompt_eval_s": evaluation,
                    "prompt_tokens": sizes,
                    "settings": vars(args) | {"model": str(model), "json": str(args.json)},
                    "runs": {str(c): rs for c, rs in runs.items()},
                    "median": report,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
