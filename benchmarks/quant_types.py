"""Benchmark: how the GGUF quantization type decides what batching gains on a CPU.

llama.cpp's CPU backend multiplies a batch of several sequences' tokens with GEMM
kernels for some weight types only (on x86 with AVX2: Q4_0 and IQ4_NL are repacked for
them at load, Q8_0 goes through tinyBLAS); others, such as the Q4_1 of the SmolLM2 file
docchat installs, fall back to one dot product per row and token, so a step of four
sequences costs nearly four steps of one. This script requantizes the chat model into
other types (in a temporary folder), then measures for each, in the same process:

- aggregate decode tokens/s with 1, 2, 4 and 8 sequences (bare `llama_decode`, as in
  benchmarks/concurrency.py), rounds interleaved over types and levels, median kept;
- what the requantizing cost: perplexity on docchat's own docs/, and the KL divergence
  and top-1 agreement of each token's distribution against the original file.

Requantizing an already quantized file compounds the rounding; a deployment that wants a
type would take one made from the original weights. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/quant_types.py [--types q8_0,q5_0,iq4_nl,q4_0] [--json F]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from concurrency import cpu_model, decode_rate
from llama_cpp import Llama

from app.llm.batching import BatchedContext
from app.llm.cpu_backends import load_cpu_backend
from app.llm.provision import small_chat_model
from app.llm.requantize import requantize

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (1, 2, 4, 8)


def log_probs(llm: Any, tokens: list[int]) -> np.ndarray:
    """Log-softmax of the logits after each token."""
    llm.reset()
    llm.eval(tokens)
    logits = np.array(llm.scores[: len(tokens)], dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    result: np.ndarray = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default SmolLM2)")
    parser.add_argument("--types", default="q8_0,q5_0,iq4_nl,q4_0", help="Also f16, bf16.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64, help="decode steps per measure")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--text-tokens", type=int, default=2000, help="tokens for quality")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    # make install's llama.cpp holds every CPU variant: one must be loaded before a model.
    load_cpu_backend()
    source = args.model or small_chat_model()
    print(f"{source.name}, {args.threads} threads, {cpu_model()}")
    work = Path(tempfile.mkdtemp(prefix="docchat-quant-"))
    files = {"original": source}
    for name in args.types.split(","):
        files[name] = work / f"{source.stem}.{name}.gguf"
        requantize(source, files[name], name, args.threads)

    text = "".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
    models: dict[str, Any] = {}
    contexts: dict[str, BatchedContext] = {}
    quality: dict[str, dict[str, float]] = {}
    reference: np.ndarray | None = None
    tokens: list[int] = []
    for name, path in files.items():
        llm = Llama(
            model_path=str(path),
            n_ctx=args.text_tokens + 16,
            n_batch=512,
            n_threads=args.threads,
            logits_all=True,
            verbose=False,
        )
        if not tokens:
            tokens = llm.tokenize(text.encode(), add_bos=False)[: args.text_tokens]
        lp = log_probs(llm, tokens)
        targets = np.array(tokens[1:])
        nll = float(-lp[np.arange(len(targets)), targets].mean())
        if reference is None:
            reference = lp
        kl = float((np.exp(reference) * (reference - lp)).sum(axis=1).mean())
        top1 = float((reference.argmax(axis=1) == lp.argmax(axis=1)).mean())
        quality[name] = {
            "mib": round(path.stat().st_size / 2**20, 1),
            "perplexity": round(math.exp(nll), 2),
            "kl_vs_original": round(kl, 4),
            "top1_agreement": round(top1, 3),
        }
        models[name] = llm
        contexts[name] = BatchedContext(
            llm._model.model,
            n_ctx_per_seq=512,
            n_parallel=max(LEVELS),
            n_batch=512,
            n_threads=args.threads,
        )

    prompt = tokens[:48]
    rates: dict[str, dict[int, list[float]]] = {name: {} for name in files}
    for _ in range(args.rounds):
        for name, ctx in contexts.items():
            for streams in LEVELS:
                rate = decode_rate(ctx, streams, args.tokens, prompt)
                rates[name].setdefault(streams, []).append(rate)

    report: dict[str, Any] = {"model": source.name, "cpu": cpu_model(), "types": {}}
    base4 = statistics.median(rates["original"][4])
    print(
        "type     |   MiB | tok/s at 1 / 2 / 4 / 8 | 4 vs 1 | 8 vs 1 | "
        "4 vs original's 4 | perplexity |    KL | top-1"
    )
    for name in files:
        med = {n: statistics.median(r) for n, r in rates[name].items()}
        q = quality[name]
        report["types"][name] = {
            **q,
            "tokens_per_s": {str(n): round(v, 1) for n, v in med.items()},
            "ratio_4": round(med[4] / med[1], 2),
            "ratio_8": round(med[8] / med[1], 2),
        }
        print(
            f"{name:8s} | {q['mib']:5.0f} | "
            + " / ".join(f"{med[n]:3.0f}" for n in LEVELS)
            + f"      | {med[4] / med[1]:5.2f}x | {med[8] / med[1]:5.2f}x | "
            f"{med[4] / base4:17.2f}x | {q['perplexity']:10.2f} | "
            f"{q['kl_vs_original']:.3f} | {q['top1_agreement']:.3f}"
        )
    for ctx in contexts.values():
        ctx.close()
    for llm in models.values():
        llm.close()
    for path in work.iterdir():
        path.unlink()
    work.rmdir()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
