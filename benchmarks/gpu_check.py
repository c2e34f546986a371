"""GPU check and figures: the same engine and model with every layer offloaded to a GPU
(`llm.n_gpu_layers = -1`, needs a CUDA build of llama-cpp-python) against the CPU.

Prints, as JSON: whether the build offloads, GPU memory taken, greedy answers on both
(compared, not asserted: GPU kernels round differently), prompt evaluation time of a
RAG-sized prompt and aggregate decode tokens/s with 1-16 concurrent streams.

    python benchmarks/gpu_check.py --model SmolLM2.gguf [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import llama_cpp

from app.llm.engine import LlamaEngine
from app.llm.hardware import default_threads
from app.settings import LLMSettings

QUESTIONS = [
    "Explain what a widget server does.",
    "Describe how to back up a database.",
    "List some ways to speed up a web application.",
    "What is continuous integration?",
]
# About 800 tokens, the size of a RAG prompt with four retrieved chunks.
LONG = " ".join(
    f"Section {i}: the widget server stores its settings in a file and reloads them "
    "when the administrator sends a signal; backups run every night."
    for i in range(30)
)


def gpu_memory_mib() -> int | None:
    """Memory in use on the first GPU, as nvidia-smi reports it."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return int(out.split()[0])
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return None


async def answer(engine: LlamaEngine, question: str, tokens: int) -> tuple[str, int]:
    prompt = engine.format([{"role": "user", "content": question}])
    generation = engine.stream(prompt, max_tokens=tokens)
    text = "".join([p async for p in generation])
    return text, generation.stats.completion_tokens


async def throughput(engine: LlamaEngine, streams: int, tokens: int) -> float:
    started = time.perf_counter()
    done = await asyncio.gather(
        *(answer(engine, QUESTIONS[i % len(QUESTIONS)], tokens) for i in range(streams))
    )
    return sum(n for _, n in done) / (time.perf_counter() - started)


def measure(model: Path, gpu_layers: int, threads: int, tokens: int) -> dict[str, Any]:
    before = gpu_memory_mib()
    greedy = LlamaEngine(
        LLMSettings(
            n_gpu_layers=gpu_layers, n_threads=threads, n_ctx=2048, temperature=0.0, parallel=1
        ),
        model,
    )
    loaded = gpu_memory_mib()
    answers = [asyncio.run(answer(greedy, q, 48))[0] for q in QUESTIONS]
    long_prompt = greedy.format([{"role": "user", "content": LONG}])
    greedy.prompt_eval_seconds(long_prompt)  # warm-up
    prompt_eval = min(greedy.prompt_eval_seconds(long_prompt) for _ in range(3))
    greedy.close()
    # Sampling keeps answers from ending early, so every stream decodes `tokens` tokens.
    engine = LlamaEngine(
        LLMSettings(
            n_gpu_layers=gpu_layers,
            n_threads=threads,
            n_ctx=1024,
            temperature=0.8,
            parallel=16,
            queue_size=32,
        ),
        model,
    )
    asyncio.run(throughput(engine, 1, 8))  # warm-up
    rates = {
        n: max(asyncio.run(throughput(engine, n, tokens)) for _ in range(2))
        for n in (1, 2, 4, 8, 16)
    }
    engine.close()
    return {
        "n_gpu_layers": gpu_layers,
        "gpu_memory_mib_for_model": None if before is None or loaded is None else loaded - before,
        "greedy_answers": answers,
        "long_prompt_tokens": len(long_prompt.tokens),
        "long_prompt_eval_s": round(prompt_eval, 4),
        "decode_tokens_per_s": {str(n): round(r, 1) for n, r in rates.items()},
        "ratio_to_one_stream": {str(n): round(r / rates[1], 2) for n, r in rates.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report: dict[str, Any] = {
        "llama_cpp": llama_cpp.__version__,
        "supports_gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "threads": args.threads,
    }
    for name, layers in (("gpu", -1), ("cpu", 0)):
        report[name] = measure(args.model, layers, args.threads, args.tokens)
        print(name, json.dumps(report[name], indent=1), flush=True)
    same = sum(
        a == b
        for a, b in zip(
            report["gpu"]["greedy_answers"], report["cpu"]["greedy_answers"], strict=True
        )
    )
    report["greedy_same_on_gpu_and_cpu"] = f"{same}/{len(QUESTIONS)}"
    report["speedup_gpu_over_cpu"] = {
        "long_prompt_eval": round(
            report["cpu"]["long_prompt_eval_s"] / report["gpu"]["long_prompt_eval_s"], 1
        ),
        **{
            f"decode_{n}_streams": round(
                report["gpu"]["decode_tokens_per_s"][n] / report["cpu"]["decode_tokens_per_s"][n], 1
            )
            for n in report["gpu"]["decode_tokens_per_s"]
        },
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
