"""Benchmark: how close each int8 variant of the embedding model is to fp32, and how fast.

The variants (app/llm/embedder.py): fp32 on PyTorch (the reference), `int8` (ONNX Runtime
dynamic quantization with one scale per weight tensor: the first `onnx-int8`) and
`int8-channel` (one scale per output channel: `onnx-int8` now). Each embeds the same
sample of chunks taken from a collection's stored text, interleaved round by round; the
figures are each variant's cosine to the fp32 vectors (mean and worst) and its seconds
per round (median) with the ratio to fp32 in the same round. Retrieval per variant is
measured by benchmarks/retrieval_context.py on collections reindexed to each one.

    DOCCHAT_DATA_DIR=/tmp/ev .venv/bin/python benchmarks/int8_variants.py \\
        --collection python311 [--sample 400] [--rounds 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.components import load_embedder, open_database  # noqa: E402
from app.settings import load_settings  # noqa: E402
from app.store.index_record import IndexRecord  # noqa: E402
from ingest.reindex import stored_chunks  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collection", default="docs")
    parser.add_argument("--sample", type=int, default=400, help="chunks embedded per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    settings = load_settings()
    db = open_database(settings)
    try:
        chunks = sorted(stored_chunks(db, args.collection).values(), key=lambda c: c.id)
    finally:
        db.close()
    if not chunks:
        raise SystemExit(f"no stored chunks in collection {args.collection!r}")
    texts = [c.text for c in random.Random(7).sample(chunks, min(args.sample, len(chunks)))]

    fp32 = load_embedder(settings, embedding_backend="auto")  # fp32 on torch, and its int8 twins
    variants = {"fp32": fp32}
    for name in ("int8", "int8-channel"):
        variants[name] = fp32.variant_for(IndexRecord(replace(fp32.identity, variant=name)))
    reference = np.array(fp32.embed(texts))
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    cosines: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for name, embedder in variants.items():
            began = time.perf_counter()
            vectors = np.array(embedder.embed(texts))
            seconds[name].append(time.perf_counter() - began)
            cosines[name] = (vectors * reference).sum(axis=1)

    rows = []
    print(f"{len(texts)} chunks of {args.collection!r}, {args.rounds} rounds")
    print("| variant | cosine to fp32 (mean / worst) | seconds (median) | ratio to fp32 |")
    print("| --- | --- | --- | --- |")
    for name in variants:
        ratios = [f / s for f, s in zip(seconds["fp32"], seconds[name], strict=True)]
        row = {
            "variant": name,
            "cosine_mean": round(float(cosines[name].mean()), 4),
            "cosine_min": round(float(cosines[name].min()), 4),
            "seconds": round(statistics.median(seconds[name]), 2),
            "speedup": round(statistics.median(ratios), 2),
        }
        rows.append(row)
        print(
            f"| {name} | {row['cosine_mean']:.4f} / {row['cosine_min']:.4f} | "
            f"{row['seconds']:.1f} | {row['speedup']:.2f}x |"
        )
    if args.json:
        args.json.write_text(json.dumps({"chunks": len(texts), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
