"""The answer-type rule (app/rag/answer_types.py) measured: every question of the sets
retrieved as the chat retrieves it, with the rule off (the rest of today's scope
decision on) and then applied to the passages found; figures, not pass/fail; no chat
model is loaded.

    PYTHONPATH=. .venv/bin/python benchmarks/answer_types.py --data /tmp/data \\
        --set eval/docs_qa.jsonl:docs --set eval/heldout/docs.jsonl:docs ... \\
        --out benchmarks/answer_types.json

Each --set is QUESTIONS:COLLECTION, the collection ingested and calibrated in --data.
The sets in eval/heldout/ were written before the rule was (commit 926b963): they say
how it does on near misses it was not made from. The labelled answers (eval/labels/)
are checked too: a labelled answer whose stored passages lack the kind of fact its
question asks for would now be refused before the model is asked.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.components import load_embedder  # noqa: E402
from app.evaluation.cases import read_cases  # noqa: E402
from app.rag.answer_types import asked_types, missing_answer_types  # noqa: E402
from app.rag.retrieval import Retriever  # noqa: E402
from app.settings import RagSettings, Settings  # noqa: E402
from app.store.db import Database  # noqa: E402
from app.store.vectors import VectorStore  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from answer_checks import read_labelled  # noqa: E402


def run(data: Path, specs: list[str]) -> list[dict[str, Any]]:
    embedder = load_embedder(Settings(_env_file=None), embedding_backend="auto")
    db = Database(f"sqlite:///{data / 'docchat.db'}")
    vectors = VectorStore(url=None, path=data / "chroma", writer=False)
    rows: list[dict[str, Any]] = []
    try:
        for spec in specs:
            questions, collection = spec.split(":")
            rag = RagSettings(answer_types=False)
            retriever = Retriever.configured(rag, embedder, vectors, db, collection, data_dir=data)
            for case in read_cases(Path(questions)):
                hits = retriever.context_sync(case.question)
                started = time.perf_counter()
                missing = missing_answer_types(case.question, [h.text for h in hits])
                rows.append(
                    {
                        "set": questions,
                        "collection": collection,
                        "question": case.question,
                        "out_of_scope": case.out_of_scope,
                        "passes_today": bool(hits),
                        "asks": [t.name for t in asked_types(case.question)],
                        "missing": missing if hits else [],
                        "rule_ms": round(1000 * (time.perf_counter() - started), 3),
                    }
                )
    finally:
        vectors.close()
        db.close()
    return rows


def figures(rows: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * 6)
    for r in rows:
        c = counts[f"{r['set']} ({r['collection']})"]
        after = not r["passes_today"] or bool(r["missing"])
        base = 0 if r["out_of_scope"] else 3
        c[base] += 1
        c[base + 1] += not r["passes_today"]
        c[base + 2] += after
    return {
        name: {
            "out_of_scope_refused": f"{c[1]}/{c[0]} -> {c[2]}/{c[0]}",
            "in_scope_refused": f"{c[4]}/{c[3]} -> {c[5]}/{c[3]}",
        }
        for name, c in counts.items()
    }


def labels() -> list[dict[str, Any]]:
    out = []
    for r in read_labelled():
        if asked_types(r.question):
            out.append(
                {
                    "set": r.set,
                    "model": r.model,
                    "question": r.question,
                    "label": r.label,
                    "missing": missing_answer_types(r.question, [h.text for h in r.hits]),
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--set", action="append", default=[], dest="sets")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = run(args.data, args.sets)
    table = figures(rows)
    print("| set | out of scope refused, before -> after | in scope refused |")
    print("| --- | --- | --- |")
    for name, f in table.items():
        print(f"| {name} | {f['out_of_scope_refused']} | {f['in_scope_refused']} |")
    asking = [r for r in rows if r["asks"]]
    print(f"\n{len(asking)} questions ask for a kind of fact:")
    for r in asking:
        scope = "out" if r["out_of_scope"] else "in "
        state = "refused before" if not r["passes_today"] else f"missing {r['missing']}"
        print(f"  {scope} {r['asks']} {state}: {r['question']}")
    labelled = labels()
    print(f"\nlabelled answers whose question asks for one: {len(labelled)}")
    for item in labelled:
        print(f"  {item['label']:7} {item['model']} missing {item['missing']}: {item['question']}")
    ms = sorted(r["rule_ms"] for r in rows)
    print(f"\nrule time per question: median {ms[len(ms) // 2]} ms, max {ms[-1]} ms")
    if args.out:
        report = {
            "machine": platform.platform(),
            "figures": table,
            "asking": asking,
            "labels": labelled,
            "rule_ms_max": ms[-1],
        }
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
