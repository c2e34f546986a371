"""Benchmark: embedding throughput per lever, and retrieval quality per embedding variant.

Levers, measured in one process on the same chunks, interleaved round by round (the
machine's other load hits every lever alike; ratios to the baseline are per round,
then the median):

- torch, one call per file: what `docchat ingest` did (the baseline);
- torch, bucketed: all chunks in one call, batches of similar length;
- onnx fp32, one call per file / bucketed: the same weights on ONNX Runtime;
- onnx int8, bucketed: the ONNX export with int8 dynamic quantization.

Every token is still embedded: chunks are embedded whole, up to the model's window
(256 word pieces), the same for every lever; tokens are counted with the special ones.

Quality: the corpus (the Python 3.11 manual's pages that the question set cites, those
under --max-page-kb by default, or the whole manual with --all-pages) is ingested once
with the fp32 ONNX backend, then re-embedded into an int8 generation with the reindex
code; recall@5 and MRR of the questions of eval/python311_qa.jsonl whose pages are in
the corpus are measured with fp32 (ONNX and torch queries) and int8.

    .venv/bin/python benchmarks/embedding_speed.py [--sample 600] [--rounds 3] \
        [--json benchmarks/results/embedding_speed.json]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.components import load_embedder, open_database, open_ingestor, open_vectors
from app.evaluation.cases import QACase, read_cases
from app.evaluation.retrieval import evaluate_retrieval
from app.llm.embedder import Embedder
from app.rag.retrieval import Retriever
from app.settings import Settings, load_settings
from app.store.index_record import Chunking
from ingest.reindex import Reindexer, stored_chunks

DOCS = Path("/usr/share/doc/python3.11/html")
QA = Path(__file__).parents[1] / "eval" / "python311_qa.jsonl"
COLLECTION = "python311"


def cases(docs: Path, max_kb: float | None) -> list[QACase]:
    """The in-scope questions whose cited pages are all in the corpus."""
    return [
        case
        for case in read_cases(QA)
        if not case.out_of_scope
        and case.sources
        and all(
            (docs / s).is_file() and (max_kb is None or (docs / s).stat().st_size < max_kb * 1000)
            for s in case.sources
        )
    ]


def corpus(docs: Path, target: Path, chosen: list[QACase], all_pages: bool) -> Path:
    """The pages the chosen questions cite (or all of them), under their own paths."""
    if all_pages:
        return docs
    if target.exists():
        return target
    for rel in sorted({s for case in chosen for s in case.sources}):
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(docs / rel, target / rel)
    return target


def ingest(settings: Settings, pages: Path, figures: dict[str, Any]) -> None:
    vectors = open_vectors(settings, writer=False)
    try:
        have = vectors.count(COLLECTION)
    finally:
        vectors.close()
    if have:
        print(f"reusing the ingested collection ({have} chunks)")
        return
    started = time.perf_counter()
    with open_ingestor(settings) as ingestor:
        summary = ingestor.run([pages], COLLECTION)
    figures["ingest"] = {
        "backend": settings.embedding.backend,
        "files": summary.new + summary.changed,
        "chunks": summary.chunks_written,
        "seconds": round(time.perf_counter() - started, 1),
        "stages": {k: round(v, 1) for k, v in summary.stages.items()},
    }
    print(f"ingested: {figures['ingest']}")


def sample(settings: Settings, n: int) -> list[list[str]]:
    """n chunk texts (as embedded) of whole files, grouped by file."""
    db = open_database(settings)
    try:
        chunks = stored_chunks(db, COLLECTION)
    finally:
        db.close()
    by_file: dict[str, list[str]] = {}
    for chunk in chunks.values():
        by_file.setdefault(str(chunk.metadata["path"]), []).append(chunk.text)
    files = sorted(by_file)
    random.Random(11).shuffle(files)
    picked: list[list[str]] = []
    for path in files:
        if sum(map(len, picked)) >= n:
            break
        picked.append(by_file[path][: max(1, n - sum(map(len, picked)))])
    return picked


def tokens_embedded(embedder: Embedder, texts: list[str]) -> int:
    """Word pieces the model reads of each text, special tokens included, window-capped."""
    return sum(min(n + 2, embedder.max_tokens) for n in embedder.count_tokens(texts))


def throughput(
    levers: dict[str, Callable[[], list[list[float]]]], tokens: int, rounds: int
) -> dict[str, dict[str, float]]:
    """tokens/s of each lever per round (order rotated each round) and the median
    ratio to the first lever within a round."""
    names = list(levers)
    per_round: list[dict[str, float]] = []
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        speeds = {}
        for name in order:
            began = time.perf_counter()
            levers[name]()
            speeds[name] = tokens / (time.perf_counter() - began)
            print(f"  round {r + 1} {name}: {speeds[name]:,.0f} tokens/s", flush=True)
        per_round.append(speeds)
    base = names[0]
    return {
        name: {
            "tokens_per_s": round(statistics.median(s[name] for s in per_round), 1),
            "ratio": round(statistics.median(s[name] / s[base] for s in per_round), 3),
            "ratio_min": round(min(s[name] / s[base] for s in per_round), 3),
            "ratio_max": round(max(s[name] / s[base] for s in per_round), 3),
        }
        for name in names
    }


def recall(
    settings: Settings, embedder: Embedder, chosen: list[QACase], k: int = 5
) -> dict[str, float]:
    vectors = open_vectors(settings, writer=False)
    try:
        retriever = Retriever(embedder, vectors, COLLECTION, top_k=k, min_score=-1.0)
        report = evaluate_retrieval(retriever, chosen, k=k)
    finally:
        vectors.close()
    return {"recall@5": round(report.recall, 3), "mrr@5": round(report.mrr, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--all-pages", action="store_true", help="the whole manual")
    parser.add_argument(
        "--max-page-kb",
        type=float,
        default=150,
        help="only questions whose pages are smaller (0: all questions)",
    )
    parser.add_argument("--data-dir", type=Path, default=Path("benchmarks/results/embedding-speed"))
    parser.add_argument("--sample", type=int, default=600, help="chunks per lever and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    args.data_dir.mkdir(parents=True, exist_ok=True)
    settings = load_settings(data_dir=args.data_dir, embedding={"backend": "onnx"})
    figures: dict[str, Any] = {"machine": "2 cores, shared with other work while measured"}
    chosen = cases(args.docs, args.max_page_kb or None)
    pages = corpus(args.docs, args.data_dir / "pages", chosen, args.all_pages)
    figures["questions"] = len(chosen)
    print(f"{len(chosen)} questions")
    ingest(settings, pages, figures)

    torch_model = load_embedder(settings, embedding_backend="torch")
    onnx = load_embedder(settings, embedding_backend="onnx")
    int8 = load_embedder(settings, embedding_backend="onnx-int8")
    files = sample(settings, args.sample)
    texts = [t for f in files for t in f]
    tokens = tokens_embedded(torch_model, texts)
    figures["sample"] = {
        "chunks": len(texts),
        "files": len(files),
        "tokens": tokens,
        "mean_tokens": round(tokens / len(texts), 1),
    }
    print(f"sample: {figures['sample']}")

    def per_file(model: Embedder) -> Callable[[], list[list[float]]]:
        return lambda: [v for f in files for v in model.embed(f)]

    def bucketed(model: Embedder) -> Callable[[], list[list[float]]]:
        return lambda: model.embed(texts)

    levers = {
        "torch fp32, per file (before)": per_file(torch_model),
        "torch fp32, bucketed": bucketed(torch_model),
        "onnx fp32, per file": per_file(onnx),
        "onnx fp32, bucketed": bucketed(onnx),
        "onnx int8, bucketed": bucketed(int8),
    }
    figures["levers"] = throughput(levers, tokens, args.rounds)
    reference = np.array(torch_model.embed(texts))
    for name, model in (("onnx fp32", onnx), ("onnx int8", int8)):
        cosine = (reference * np.array(model.embed(texts))).sum(axis=1)
        figures.setdefault("cosine_to_torch", {})[name] = {
            "mean": round(float(cosine.mean()), 4),
            "min": round(float(cosine.min()), 4),
        }

    if not args.skip_quality:
        quality: dict[str, Any] = {
            "fp32 index, onnx queries": recall(settings, onnx, chosen),
            "fp32 index, torch queries": recall(settings, torch_model, chosen),
        }
        vectors = open_vectors(settings, writer=True)
        db = open_database(settings)
        try:
            reindexer = Reindexer(
                db,
                vectors,
                chunking=Chunking(settings.ingest.chunk_tokens, settings.ingest.chunk_overlap),
            )
            record = vectors.target(COLLECTION).record
            if record is None or record.model.variant != "int8":
                summary = reindexer.run(COLLECTION, int8)
                figures["reindex_int8"] = {
                    "chunks": summary.chunks,
                    "seconds": round(summary.seconds, 1),
                    "stages": {k: round(v, 1) for k, v in summary.stages.items()},
                }
        finally:
            db.close()
            vectors.close()
        quality["int8 index, int8 queries"] = recall(settings, int8, chosen)
        vectors = open_vectors(settings, writer=True)
        db = open_database(settings)
        try:  # serve fp32 again, so a rerun starts from the same place
            Reindexer(db, vectors, chunking=Chunking(0, 0)).rollback(
                COLLECTION, lambda record: onnx
            )
        finally:
            db.close()
            vectors.close()
        figures["quality"] = quality

    print()
    print("| lever | tokens/s | ratio to before (min-max) |")
    print("| --- | --- | --- |")
    for name, row in figures["levers"].items():
        print(
            f"| {name} | {row['tokens_per_s']:,.0f} | {row['ratio']:.2f}x "
            f"({row['ratio_min']:.2f}-{row['ratio_max']:.2f}) |"
        )
    print(f"\ncosine to torch fp32: {figures['cosine_to_torch']}")
    if "quality" in figures:
        print("\n| index and queries | recall@5 | MRR@5 |")
        print("| --- | --- | --- |")
        for name, row in figures["quality"].items():
            print(f"| {name} | {row['recall@5']:.3f} | {row['mrr@5']:.3f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
