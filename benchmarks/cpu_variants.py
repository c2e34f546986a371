"""Benchmark: llama.cpp's prompt evaluation and decoding per CPU variant, against the
portable AVX2 build, on the catalog's models, interleaved in rounds on one machine.

    .venv/bin/python benchmarks/cpu_variants.py \\
        --build portable=/tmp/portable-site --build all=.venv/lib/python3.11/site-packages \\
        --variant haswell --variant skylakex --variant icelake --variant zen4 \\
        --model /tmp/ev28/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf [--rounds 3]

A build is a folder holding an installed `llama_cpp` (pip install --target ...); for a
build of every variant (make install's), each --variant is measured, and `auto` (what
docchat loads). Each measurement runs in a process of its own (one CPU backend per
process): a prompt of --prompt-tokens real text evaluated in one sequence (n_batch 512,
as the engine does), then --decode tokens decoded in it. Prints tokens/s (median of
the rounds) and the ratio to the first build; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEXT = Path("/usr/share/doc/python3.11/html/tutorial/classes.html")


def child(args: argparse.Namespace) -> None:
    """Runs in the measured process: load, evaluate the prompt, decode."""
    import re

    from app.llm.batching import BatchedContext
    from app.llm.cpu_backends import load_cpu_backend

    variant = load_cpu_backend(args.variant) if args.variant != "builtin" else None
    from llama_cpp import Llama

    llm = Llama(model_path=args.model, n_ctx=256, n_threads=args.threads, verbose=False)
    text = re.sub(r"<[^>]+>|\s+", " ", TEXT.read_text(errors="ignore"))
    tokens = llm.tokenize(text.encode(), add_bos=False)[: args.prompt_tokens]
    ctx = BatchedContext(
        llm._model.model,
        n_ctx_per_seq=args.prompt_tokens + args.decode + 16,
        n_parallel=1,
        n_batch=512,
        n_threads=args.threads,
    )
    ctx.free_seq(1)
    began = time.perf_counter()
    ctx.prefill(1, tokens, 0)
    prompt_s = time.perf_counter() - began
    pos, token = len(tokens), tokens[-1]
    began = time.perf_counter()
    for _ in range(args.decode):
        ctx.decode([(token, pos, 1, True)])
        pos += 1
    decode_s = time.perf_counter() - began
    ctx.close()
    print(
        json.dumps(
            {
                "variant": variant or "builtin",
                "prompt_tps": len(tokens) / prompt_s,
                "decode_tps": args.decode / decode_s,
            }
        )
    )


def measure(site: str, variant: str, model: str, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{site}:{ROOT}"}
    command = [sys.executable, __file__, "--child", "--model", model, "--variant", variant]
    command += ["--threads", str(args.threads), "--prompt-tokens", str(args.prompt_tokens)]
    command += ["--decode", str(args.decode)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    from app.llm.hardware import default_threads  # the cores usable here, as the engine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--build", action="append", default=[], help="NAME=SITE_FOLDER")
    parser.add_argument("--variant", default="auto", help="In --child: the one to load.")
    parser.add_argument("--variants", action="append", default=[], help="Variants to measure.")
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--prompt-tokens", type=int, default=1300)
    parser.add_argument("--decode", type=int, default=64)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        args.model = args.model[0]
        child(args)
        return
    runs: list[tuple[str, str, str]] = []  # (build, site, variant)
    for spec in args.build:
        name, _, site = spec.partition("=")
        sys.path.insert(0, site)
        variants = [*args.variants, "auto"] if list(Path(site).glob("bin/libggml-cpu-*")) else []
        runs += [(name, site, v) for v in variants] or [(name, site, "builtin")]
        sys.path.remove(site)
    figures: dict[str, dict[str, dict[str, list[float]]]] = {}
    for _ in range(args.rounds):
        for model in args.model:
            for name, site, variant in runs:
                r = measure(site, variant, model, args)
                key = f"{name}:{r['variant'] if variant == 'auto' else variant}"
                key += " (auto)" if variant == "auto" else ""
                slot = figures.setdefault(Path(model).name, {}).setdefault(key, {})
                slot.setdefault("prompt_tps", []).append(r["prompt_tps"])
                slot.setdefault("decode_tps", []).append(r["decode_tps"])
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{args.threads} threads, {args.prompt_tokens}-token prompt, {args.rounds} rounds"
    )
    print("| model | build:variant | prompt tok/s | x | decode tok/s | x |")
    print("| --- " * 6 + "|")
    table = {}
    for model, rows in figures.items():
        base = None
        for key, slot in rows.items():
            p, d = statistics.median(slot["prompt_tps"]), statistics.median(slot["decode_tps"])
            base = base or (p, d)
            table.setdefault(model, {})[key] = {
                "prompt_tps": round(p, 1),
                "decode_tps": round(d, 1),
            }
            print(
                f"| {model} | {key} | {p:.1f} | {p / base[0]:.2f} | {d:.1f} | {d / base[1]:.2f} |"
            )
    if args.out:
        args.out.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
