"""Benchmark: prompt-lookup decoding in the batched engine — decode tokens/s and
whether the greedy text is unchanged, against plain decoding, on real RAG prompts.

    DOCCHAT_DATA_DIR=/tmp/ev28 .venv/bin/python benchmarks/prompt_lookup.py \\
        --set eval/docs_qa.jsonl:docs --limit 12 --lookup 0 --lookup 4 --lookup 8 \\
        [--streams 1 --streams 4] [--out benchmarks/prompt_lookup.json]

Each question's prompt is built by the chat service (retrieval, excerpts, the system
prompt); every engine (one per --lookup, the active model) answers it greedily, alone
(--streams 1) or four at a time. Decode speed: answer tokens over the time after the
first token. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.components import active_model, build_components, load_model  # noqa: E402
from app.evaluation.cases import read_cases  # noqa: E402
from app.llm.base import ChatEngine, Prompt  # noqa: E402
from app.settings import load_settings  # noqa: E402


async def generate(engine: ChatEngine, prompt: Prompt, max_tokens: int) -> dict[str, Any]:
    started = time.perf_counter()
    generation = engine.stream(prompt, max_tokens=max_tokens, temperature=0.0)
    first = None
    pieces = []
    async for piece in generation:
        first = first or time.perf_counter()
        pieces.append(piece)
    ended = time.perf_counter()
    tokens = generation.stats.completion_tokens
    decode_s = ended - (first or ended)
    return {
        "text": "".join(pieces),
        "tokens": tokens,
        "decode_s": decode_s,
        "all_s": ended - started,
    }


async def run_all(engine: ChatEngine, prompts: list[Prompt], streams: int, n: int) -> list[Any]:
    results: list[Any] = []
    for start in range(0, len(prompts), streams):
        batch = prompts[start : start + streams]
        results += await asyncio.gather(*(generate(engine, p, n) for p in batch))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", required=True, help="FILE:COLLECTION")
    parser.add_argument("--limit", type=int, default=12)
    parser.add_argument("--lookup", type=int, action="append", required=True)
    parser.add_argument("--streams", type=int, action="append")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    file, _, collection = args.set.partition(":")
    settings = load_settings(llm={"temperature": 0.0})
    settings = settings.model_copy(
        update={"vectors": settings.vectors.model_copy(update={"collection": collection})}
    )
    components = build_components(settings, writer=False)
    entry = active_model(settings, components.db)
    prompts: list[Prompt] = []
    for case in read_cases(Path(file)):
        if len(prompts) >= args.limit:
            break
        if not case.out_of_scope:
            prompt = asyncio.run(components.chat.prompt_for(case.question))
            if prompt is not None:
                prompts.append(prompt)
    rows = []
    texts: dict[tuple[int, int], list[str]] = {}
    for streams in args.streams or [1]:
        for k in args.lookup:
            llm = settings.llm.model_copy(update={"lookup_tokens": k, "parallel": max(streams, 1)})
            engine = load_model(settings.model_copy(update={"llm": llm}), entry)
            try:
                results = asyncio.run(run_all(engine, prompts, streams, args.max_tokens))
            finally:
                engine.close()
            texts[(streams, k)] = [r["text"] for r in results]
            tokens = sum(r["tokens"] for r in results)
            decode = sum(r["decode_s"] for r in results)
            base = texts.get((streams, args.lookup[0]), [])
            rows.append(
                {
                    "streams": streams,
                    "lookup_tokens": k,
                    "answers": len(results),
                    "decode_tps_per_stream": round(tokens / decode, 1) if decode else 0.0,
                    "answer_s_p50": round(statistics.median(r["all_s"] for r in results), 2),
                    "same_text": sum(
                        a == b for a, b in zip(base, texts[(streams, k)], strict=True)
                    ),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    components.close()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"model {entry.name}, {len(prompts)} prompts"
    )
    print("| streams | lookup tokens | decode tok/s per stream | answer p50 s | same text |")
    print("| --- " * 5 + "|")
    for r in rows:
        print(
            f"| {r['streams']} | {r['lookup_tokens']} | {r['decode_tps_per_stream']} | "
            f"{r['answer_s_p50']} | {r['same_text']}/{r['answers']} |"
        )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
