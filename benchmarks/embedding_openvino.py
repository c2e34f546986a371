"""Benchmark: the embedding model in bf16 on OpenVINO against PyTorch's autocast (and
fp32 on ONNX Runtime, the reference), on a collection's stored chunks: chunks/s per
runtime, interleaved round by round, the cosine of each runtime's vectors to fp32's,
and the time to embed one question (docs/performance.md, "OpenVINO for bf16").

    DOCCHAT_DATA_DIR=DIR .venv/bin/python benchmarks/embedding_openvino.py \
        --collection git [--sample 1100] [--rounds 3] [--json FILE]

Needs a CPU with bf16 instructions (AVX512-BF16 or AMX): elsewhere neither runtime
runs bf16 natively and docchat embeds in fp32.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.llm.embedder import Embedder, native_bf16
from app.llm.provision import default_embedding_model
from app.settings import load_settings

QUESTION = "How do I undo my last commit but keep the changes?"


def stored_chunks(collection: str, sample: int) -> list[str]:
    """`sample` chunk texts of the collection (the data dir's on-disk Chroma), spread
    over it."""
    import chromadb

    client = chromadb.PersistentClient(str(load_settings().chroma_path))
    texts = client.get_collection(collection).get(include=["documents"])["documents"] or []
    step = max(1, len(texts) // sample)
    return [t for t in texts[::step] if t][:sample]


def query_ms(embedder: Embedder, rounds: int = 30) -> float:
    embedder.embed([QUESTION])
    began = time.perf_counter()
    for _ in range(rounds):
        embedder.embed([QUESTION])
    return round(1000 * (time.perf_counter() - began) / rounds, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", required=True)
    parser.add_argument("--sample", type=int, default=1100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not native_bf16():
        raise SystemExit("this CPU has no bf16 instructions: nothing to compare")
    texts = stored_chunks(args.collection, args.sample)
    path = default_embedding_model()
    runtimes = {
        "onnx fp32 (reference)": Embedder(path, backend="onnx", precision="fp32"),
        "torch bf16 autocast": Embedder(
            path, backend="onnx", precision="bf16", bf16_runtime="torch"
        ),
        "openvino bf16": Embedder(path, backend="onnx", precision="bf16", bf16_runtime="openvino"),
    }
    assert runtimes["openvino bf16"].identity.backend == "openvino-bf16", "openvino did not load"
    reference = np.array(runtimes["onnx fp32 (reference)"].embed(texts))
    rates: dict[str, list[float]] = {name: [] for name in runtimes}
    cosines: dict[str, dict[str, float]] = {}
    for embedder in runtimes.values():
        embedder.embed(texts[:64])  # warm: first shapes, thread pools
    for _ in range(args.rounds):
        for name, embedder in runtimes.items():
            began = time.perf_counter()
            vectors = np.array(embedder.embed(texts))
            rates[name].append(len(texts) / (time.perf_counter() - began))
            cos = (vectors * reference).sum(axis=1)
            cosines[name] = {"min": round(float(cos.min()), 6), "mean": round(float(cos.mean()), 6)}
    base = statistics.median(rates["torch bf16 autocast"])
    figures: dict[str, Any] = {}
    print(f"# {len(texts)} chunks of {args.collection!r}, {args.rounds} rounds")
    print(
        "| runtime | chunks/s (median) | x autocast | cosine to fp32, min / mean | one question |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name, embedder in runtimes.items():
        rate = statistics.median(rates[name])
        figures[name] = {
            "chunks_per_s": [round(r, 1) for r in rates[name]],
            "median": round(rate, 1),
            "ratio_to_autocast": round(rate / base, 2),
            "cosine_to_fp32": cosines[name],
            "question_ms": query_ms(embedder),
        }
        f = figures[name]
        print(
            f"| {name} | {f['median']} | {f['ratio_to_autocast']}x | "
            f"{f['cosine_to_fp32']['min']} / {f['cosine_to_fp32']['mean']} | "
            f"{f['question_ms']} ms |"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"collection": args.collection, "chunks": len(texts), "runtimes": figures}, indent=2
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
