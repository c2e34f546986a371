"""Retrieval latency with readers: a question asked in one of 10 collections (the reader
check, then hybrid search of that collection) against the same question over one
collection holding all of their documents (figures, not pass/fail; no chat model).

    PYTHONPATH=. .venv/bin/python benchmarks/collections_retrieval.py \\
        --docs /usr/share/doc/python3.11/html/library --files 120 \\
        --questions eval/python311_qa.jsonl --out benchmarks/collections_retrieval.json

The files are split round-robin into 10 collections, each readable by one group, and
ingested a second time into one collection: the same chunks, the same embedder, the
same settings. Every question is asked, after a warm-up pass, `--repeat` times in each
layout by a person of the group that reads the collection it is asked in (the checks
and the search as the chat service does them: CollectionAccess.check, then
Retriever.context). Reported: p50/p95 in milliseconds of the check, the search, and
both, per layout, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.access.collections import Collections  # noqa: E402
from app.access.policy import CollectionAccess  # noqa: E402
from app.components import load_embedder, open_ingestor, open_vectors  # noqa: E402
from app.evaluation.cases import read_cases  # noqa: E402
from app.rag.retrieval import Retriever  # noqa: E402
from app.security.identity import Identity  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.store.db import open_database  # noqa: E402

PARTS = 10


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.5) * 1000, 2),
        "p95_ms": round(percentile(values, 0.95) * 1000, 2),
        "mean_ms": round(statistics.fmean(values) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, required=True, help="A folder of documents.")
    parser.add_argument("--files", type=int, default=120, help="How many of its files.")
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="collections-bench-"))
    files = sorted(p for p in args.docs.rglob("*") if p.is_file())[: args.files]
    for i, path in enumerate(files):
        part = work / "parts" / f"part-{i % PARTS}"
        part.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, part / path.name)
        (work / "all").mkdir(exist_ok=True)
        shutil.copy(path, work / "all" / path.name)
    settings = Settings(
        _env_file=None,
        env="test",
        data_dir=work / "data",
        vectors={"collection": "all"},
    )
    embedder = load_embedder(settings)
    started = time.perf_counter()
    with open_ingestor(settings, embedder=embedder) as ingestor:
        for p in range(PARTS):
            ingestor.run([work / "parts" / f"part-{p}"], f"part-{p}")
        ingestor.run([work / "all"], "all")
    ingest_s = time.perf_counter() - started

    db = open_database(settings)
    collections = Collections(db)
    collections.ensure("all", everyone=True, actor="cli")
    for p in range(PARTS):
        collections.ensure(f"part-{p}", everyone=False, actor="cli")
        collections.grant(f"part-{p}", "group", f"team-{p}")
    access = CollectionAccess(db, "all")
    vectors = open_vectors(settings, writer=False)

    def retriever(name: str) -> Retriever:
        return Retriever.configured(
            settings.rag, embedder, vectors, db, name, data_dir=settings.data_dir
        )

    whole = retriever("all")
    parts = [retriever(f"part-{p}") for p in range(PARTS)]
    questions = [c.question for c in read_cases(args.questions) if not c.out_of_scope]
    people = [
        Identity.user(f"u{p}", f"person {p}", "chat", frozenset({f"team-{p}"}), "token")
        for p in range(PARTS)
    ]

    def ask(i: int, question: str, layout: str) -> tuple[float, float, int]:
        if layout == "one":
            t0 = time.perf_counter()
            access.check(None, "all")  # the same check, on the one collection
            t1 = time.perf_counter()
            hits = whole.context_sync(question)
        else:
            p = i % PARTS
            t0 = time.perf_counter()
            access.check(people[p], f"part-{p}")
            t1 = time.perf_counter()
            hits = parts[p].context_sync(question)
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, len(hits)

    for i, q in enumerate(questions):  # warm: embedder, keyword indexes, caches
        ask(i, q, "one")
        ask(i, q, "ten")
    timings: dict[str, dict[str, list[float]]] = {
        layout: {"check": [], "search": [], "total": []} for layout in ("one", "ten")
    }
    for _ in range(args.repeat):
        for i, q in enumerate(questions):
            for layout in ("one", "ten"):
                check, search, _n = ask(i, q, layout)
                timings[layout]["check"].append(check)
                timings[layout]["search"].append(search)
                timings[layout]["total"].append(check + search)
    counts = {name: vectors.count(name) for name in ["all"] + [f"part-{p}" for p in range(PARTS)]}
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "files": len(files),
        "chunks_one_collection": counts["all"],
        "chunks_per_part": [counts[f"part-{p}"] for p in range(PARTS)],
        "questions": len(questions),
        "repeat": args.repeat,
        "ingest_s": round(ingest_s, 1),
        "one_collection": {k: summary(v) for k, v in timings["one"].items()},
        "ten_collections_with_readers": {k: summary(v) for k, v in timings["ten"].items()},
    }
    one, ten = report["one_collection"]["total"], report["ten_collections_with_readers"]["total"]
    report["ratio_p50_ten_over_one"] = round(ten["p50_ms"] / one["p50_ms"], 3)
    report["ratio_p95_ten_over_one"] = round(ten["p95_ms"] / one["p95_ms"], 3)
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    vectors.close()
    db.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
