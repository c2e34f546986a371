"""Benchmark: one ingest of a folder into a fresh data dir, timed by stage, before and
after (docs/performance.md, "Ingest speed").

`before` is the path of 2026-11: sentence-transformers on PyTorch, one file at a time
through every stage (embedding.backend=torch, ingest.overlap_stages=false). `after` is
fp32 ONNX Runtime with the stages overlapped (the default until 2026-12-07); `bf16` is
the default of 2026-12-07 on a CPU with bf16 instructions: the same, embedded in bf16
autocast (embedding.precision); `openvino` today's: the bf16 model run by OpenVINO
(embedding.bf16_runtime). The modes run one after
the other in this process, alternating when --rounds > 1, each into its own fresh data
dir; ratios are taken within a round (the machine is shared: absolute figures move).

With overlapped stages, the stage times run at the same time, so they add up to more
than the run: `total` is the wall time. `setup` is loading the model (and the ONNX
export on a machine's first run, cached after).

    PYTHONPATH=. .venv/bin/python benchmarks/ingest_stages.py \
        --docs /usr/share/doc/postgresql-doc-15/html [--limit 300] [--modes before,after]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.components import load_embedder, open_database, open_ingestor, open_vectors
from app.evaluation.cases import read_cases
from app.evaluation.retrieval import evaluate_retrieval, ranked_sources
from app.llm.embedder import Embedder
from app.rag.retrieval import Retriever
from app.settings import Settings
from app.store.models import Chunk, Document
from ingest.chunking import embedding_text

DEFAULT_DOCS = Path("/usr/share/doc/postgresql-doc-15/html")
MODES = {
    "before": {"backend": "torch", "overlap_stages": False},
    "after": {"backend": "onnx", "overlap_stages": True},
    "bf16": {
        "backend": "onnx",
        "overlap_stages": True,
        "precision": "bf16",
        "bf16_runtime": "torch",
    },
    # The same, the bf16 model run by OpenVINO (embedding.bf16_runtime, since 2026-12-08).
    "openvino": {
        "backend": "onnx",
        "overlap_stages": True,
        "precision": "bf16",
        "bf16_runtime": "openvino",
    },
    # The two levers apart, to see what each brings.
    "onnx-sequential": {"backend": "onnx", "overlap_stages": False},
    "bf16-sequential": {
        "backend": "onnx",
        "overlap_stages": False,
        "precision": "bf16",
        "bf16_runtime": "torch",
    },
    "torch-overlapped": {"backend": "torch", "overlap_stages": True},
}


def subset(docs: Path, limit: int, into: Path) -> Path:
    """The first `limit` files of the folder (by name), copied: a smaller run."""
    files = sorted(p for p in docs.rglob("*") if p.is_file())[:limit]
    for path in files:
        target = into / path.relative_to(docs)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return into


def past_the_window(settings: Settings, embedder: Embedder) -> int:
    """Stored chunks whose embedded text (title, section, chunk) is longer than the
    model reads: their tail is not embedded. 0: every token embedded."""
    db = open_database(settings)
    try:
        with db.session() as session:
            rows = session.execute(
                select(Document.title, Chunk.section, Chunk.text).join(Chunk.document)
            ).all()
    finally:
        db.close()
    window = embedder.max_tokens - 2  # the model adds [CLS] and [SEP]
    counts = embedder.count_tokens([embedding_text(*row) for row in rows])
    return sum(n > window for n in counts)


def retrieval(settings: Settings, embedder: Embedder, qa: Path) -> dict[str, Any]:
    """Recall@5 and MRR@5 of the set's questions on the run's collection, with the
    mode's embedder for the questions (as `docchat eval retrieval`), and the sources
    each question ranked: the same everywhere when retrieval is unchanged."""
    vectors = open_vectors(settings, writer=False)
    db = open_database(settings)
    try:
        collection = settings.vectors.collection
        retriever = Retriever.configured(
            settings.rag, embedder, vectors, db, collection, data_dir=None
        )
        cases = read_cases(qa)
        report = evaluate_retrieval(retriever, cases, k=5)
        ranked = [ranked_sources(retriever, c.question, 5) for c in cases if not c.out_of_scope]
    finally:
        db.close()
        vectors.close()
    return {
        "questions": report.questions,
        "recall_at_5": round(report.recall, 3),
        "mrr_at_5": round(report.mrr, 3),
        "ranked": ranked,
    }


def run_once(mode: str, docs: Path, keep: Path | None, qa: Path | None) -> dict[str, Any]:
    options = MODES[mode]
    data_dir = Path(tempfile.mkdtemp(prefix=f"docchat-ingest-{mode}-", dir=keep))
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        embedding={
            "backend": options["backend"],
            "precision": options.get("precision", "fp32"),
            "bf16_runtime": options.get("bf16_runtime", "torch"),
        },
        ingest={"overlap_stages": options["overlap_stages"]},
    )
    began = time.perf_counter()
    embedder = load_embedder(settings)
    setup = time.perf_counter() - began
    with open_ingestor(settings, embedder=embedder) as ingestor:
        summary = ingestor.run([docs], settings.vectors.collection)
    truncated = past_the_window(settings, embedder)
    found = retrieval(settings, embedder, qa) if qa else None
    if keep is None:
        shutil.rmtree(data_dir, ignore_errors=True)
    figures: dict[str, Any] = {
        "mode": mode,
        **options,
        "files": summary.new + summary.changed + summary.unchanged,
        "failed": summary.failed,
        "chunks": summary.chunks_written,
        "setup_s": round(setup, 2),
        "total_s": round(summary.seconds, 2),
        "chunks_per_s": round(summary.chunks_written / summary.seconds, 1),
        "truncated_chunks": truncated,
        **{f"{k}_s": round(v, 2) for k, v in sorted(summary.stages.items())},
    }
    if found is not None:
        figures["retrieval"] = found
    return figures


def show(figures: dict[str, Any]) -> None:
    stages = ", ".join(
        f"{k[:-2]} {v:.1f}"
        for k, v in figures.items()
        if k.endswith("_s") and k not in ("total_s", "setup_s", "chunks_per_s")
    )
    print(
        f"{figures['mode']:>16}: {figures['files']} files, {figures['chunks']} chunks, "
        f"total {figures['total_s']:.1f} s, {figures['chunks_per_s']} chunks/s, "
        f"{figures['truncated_chunks']} past the model's window "
        f"(setup {figures['setup_s']:.1f} s; stages s: {stages})",
        flush=True,
    )
    found = figures.get("retrieval")
    if found:
        print(
            f"{'':>16}  {found['questions']} questions: recall@5 {found['recall_at_5']:.3f}, "
            f"MRR@5 {found['mrr_at_5']:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--limit", type=int, default=0, help="first N files only (0: all)")
    parser.add_argument("--modes", default="before,after", help=f"of {', '.join(MODES)}")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="make the data dirs here and keep them")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--qa", type=Path, help="a question set: retrieval after each run")
    args = parser.parse_args()
    if not args.docs.is_dir():
        raise SystemExit(f"{args.docs} not found (apt-get install postgresql-doc-15)")
    modes = args.modes.split(",")
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SystemExit(f"unknown modes {sorted(unknown)}: use {', '.join(MODES)}")
    with tempfile.TemporaryDirectory(prefix="docchat-ingest-docs-") as tmp:
        docs = subset(args.docs, args.limit, Path(tmp)) if args.limit else args.docs
        rounds = []
        for n in range(args.rounds):
            print(f"round {n + 1}:", flush=True)
            results = [run_once(mode, docs, args.keep, args.qa) for mode in modes]
            for figures in results:
                show(figures)
            base = results[0]["total_s"]
            for figures in results[1:]:
                figures[f"speedup_vs_{modes[0]}"] = round(base / figures["total_s"], 2)
                print(f"  {figures['mode']} vs {modes[0]}: {base / figures['total_s']:.2f}x")
                if "retrieval" in figures:
                    same = figures["retrieval"]["ranked"] == results[0]["retrieval"]["ranked"]
                    figures["retrieval"]["same_ranking"] = same
                    print(f"  the same five sources, in order, for every question: {same}")
            rounds.append(results)
    if args.json:
        args.json.write_text(json.dumps({"docs": str(args.docs), "rounds": rounds}, indent=2))


if __name__ == "__main__":
    main()
