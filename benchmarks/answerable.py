"""Whether the passages answer the question (app/rag/answerable.py), measured on the hand
labels and on the question sets' scope decisions (figures, not pass/fail; no chat model
is loaded).

    PYTHONPATH=. .venv/bin/python benchmarks/answerable.py \\
        --set eval/docs_qa.jsonl:/tmp/scope/docs:docs \\
        --set eval/git_qa.jsonl:/tmp/scope/git:git \\
        --set eval/python311_qa.jsonl:/tmp/scope/py:python311 \\
        --out benchmarks/answerable.json

Each --set is QUESTIONS:DATA_DIR:COLLECTION, a data dir holding the collection ingested
and calibrated. Every question is retrieved as the chat retrieves it (rag settings'
defaults: the collection's scope threshold and the names rule, then the passages
assembled for the prompt), and for those that pass, both measures of the check are
kept. The labelled answers (eval/labels/, with the passages their prompts held in
eval/answers/) get the same measures.

Then, for each rule, per half (dev: where the threshold is chosen, by the
question's hash as benchmarks/answer_checks.py splits; held-out: only measured):

- on the sets: out-of-scope questions refused (today's decision or the check) and
  in-scope ones refused (false refusals);
- on the labels: wrong answers flagged (today's verdict, the term check or this one)
  and right answers flagged.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.components import load_embedder  # noqa: E402
from app.evaluation.cases import read_cases  # noqa: E402
from app.llm.embedder import Embedder  # noqa: E402
from app.rag.answerable import (  # noqa: E402
    answerability,
    asked_words,
    missing_names,
    rare_missing_names,
)
from app.rag.retrieval import Retriever  # noqa: E402
from app.rag.terms import unpaired_terms  # noqa: E402
from app.settings import RagSettings, Settings  # noqa: E402
from app.store.db import Database  # noqa: E402
from app.store.lexical import LexicalIndex, tokens  # noqa: E402
from app.store.vectors import VectorStore  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from answer_checks import half, read_labelled, today_flags  # noqa: E402

# The collection each labelled set's answers were made from.
COLLECTION_OF = {"docs_qa": "docs", "git_qa": "git", "git_manual_qa": "git"}
# The rules measured: each says whether the passages do NOT answer the question.
RULES: dict[str, Any] = {
    "today": lambda r: False,
    "names missing from the passages": lambda r: bool(r["missing_names"]),
    "rare names missing (kept)": lambda r: bool(r["rare_missing_names"]),
}
for _t in (0.40, 0.45, 0.50):
    RULES[f"best sentence cosine < {_t}"] = lambda r, t=_t: r["semantic"] < t
for _t in (0.2, 0.25, 0.3):
    RULES[f"key words in a passage < {_t}"] = lambda r, t=_t: r["lexical"] < t
for _t in (0.40, 0.45):
    RULES[f"rare names + cosine < {_t}"] = lambda r, t=_t: (
        bool(r["rare_missing_names"]) or r["semantic"] < t
    )
RULES["rare names + key words < 0.25"] = lambda r: (
    bool(r["rare_missing_names"]) or r["lexical"] < 0.25
)


def measures(
    question: str, hits: list[Any], embedder: Embedder, index: LexicalIndex | None = None
) -> dict[str, Any]:
    started = time.perf_counter()
    a = answerability(question, hits, embedder.embed)
    ms = round(1000 * (time.perf_counter() - started), 1)
    started = time.perf_counter()
    missing = missing_names(question, hits)
    rare = rare_missing_names(question, hits, index.share) if index is not None else []
    names_ms = round(1000 * (time.perf_counter() - started), 2)
    unknown = None
    if index is not None:
        knows = index.knows
        asked = {t for w in asked_words(question) for t in tokens(w)}
        unknown = sorted(t for t in asked if not knows(t))
    return {
        "missing_names": missing,
        "rare_missing_names": rare,
        "unknown_words": unknown,
        "passages": [h.text for h in hits],
        "lexical": round(a.lexical, 4),
        "semantic": round(a.semantic, 4),
        "sentence": a.sentence[:160],
        "ms": ms,
        "names_ms": names_ms,
    }


def run_set(spec: str, embedder: Embedder) -> dict[str, Any]:
    questions, data_dir, collection = spec.split(":")
    data = Path(data_dir)
    db = Database(f"sqlite:///{data / 'docchat.db'}")
    vectors = VectorStore(url=None, path=data / "chroma", writer=False)
    rows = []
    try:
        # Today's decision, the check under study off (it is measured on top).
        retriever = Retriever.configured(
            RagSettings(answerable_names=False), embedder, vectors, db, collection, data_dir=data
        )
        for case in read_cases(Path(questions)):
            hits = retriever.context_sync(case.question)
            row: dict[str, Any] = {
                "question": case.question,
                "out_of_scope": case.out_of_scope,
                "half": half(case.question),
                "passes_scope": bool(hits),
            }
            if hits:
                assert retriever.lexical is not None
                row |= measures(case.question, hits, embedder, retriever.lexical)
            rows.append(row)
    finally:
        vectors.close()
        db.close()
    return {"set": questions, "collection": collection, "rows": rows}


def set_figures(rows: list[dict[str, Any]], rule: Any) -> dict[str, Any]:
    def refused(r: dict[str, Any]) -> bool:
        return bool(not r["passes_scope"] or rule(r))

    inside = [refused(r) for r in rows if not r["out_of_scope"]]
    outside = [refused(r) for r in rows if r["out_of_scope"]]
    return {
        "refused_out_of_scope": f"{sum(outside)}/{len(outside)}",
        "false_refusals": f"{sum(inside)}/{len(inside)}",
    }


def label_figures(rows: list[dict[str, Any]], rule: Any) -> dict[str, Any]:
    def flagged(r: dict[str, Any]) -> bool:
        return bool(r["kept_flags"] or rule(r))

    out = {}
    for label in ("wrong", "right"):
        group = [flagged(r) for r in rows if r["label"] == label]
        out[label] = f"{sum(group)}/{len(group)}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", default=[], dest="sets")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    embedder = load_embedder(Settings(_env_file=None), embedding_backend="auto")
    sets = [run_set(spec, embedder) for spec in args.sets]
    indexes = {}
    for spec in args.sets:
        _, data_dir, collection = spec.split(":")
        data = Path(data_dir)
        db = Database(f"sqlite:///{data / 'docchat.db'}")
        index = LexicalIndex(db, collection, data / "lexical")
        index.refresh()
        indexes[collection] = index
    labels = []
    for r in read_labelled():
        if r.label not in ("wrong", "right", "partial"):
            continue
        kept = today_flags(r) or bool(
            unpaired_terms(r.question, r.answer, [h.text for h in r.hits])
        )
        labels.append(
            {
                "set": r.set,
                "model": r.model,
                "question": r.question,
                "label": r.label,
                "out_of_scope": r.out_of_scope,
                "half": r.half,
                "kept_flags": kept,
            }
            | measures(r.question, r.hits, embedder, indexes.get(COLLECTION_OF.get(r.set, "")))
        )
    report: dict[str, Any] = {"machine": platform.platform(), "rules": {}}
    print(
        "| rule | half | labels: wrong / right flagged | "
        + " | ".join(f"{s['collection']}: out of scope refused / false refusals" for s in sets)
        + " |"
    )
    for name, rule in RULES.items():
        entry: dict[str, Any] = {}
        for which in ("dev", "held-out", "all"):

            def chosen(r: dict[str, Any], which: str = which) -> bool:
                return which == "all" or r["half"] == which

            entry[which] = {
                "labels": label_figures([r for r in labels if chosen(r)], rule),
                **{
                    s["collection"]: set_figures([r for r in s["rows"] if chosen(r)], rule)
                    for s in sets
                },
            }
            e = entry[which]
            print(
                f"| {name} | {which} | {e['labels']['wrong']} / {e['labels']['right']} | "
                + " | ".join(
                    f"{e[s['collection']]['refused_out_of_scope']} / "
                    f"{e[s['collection']]['false_refusals']}"
                    for s in sets
                )
                + " |"
            )
        report["rules"][name] = entry
    timed = [r for s in sets for r in s["rows"] if "ms" in r] + labels
    if timed:
        report["ms_per_question"] = {
            "sentences_embedded": round(sum(r["ms"] for r in timed) / len(timed), 1),
            "rare_names": round(sum(r["names_ms"] for r in timed) / len(timed), 2),
        }
        print("ms per question", report["ms_per_question"])
    for row in [r for s in sets for r in s["rows"]] + labels:
        row.pop("passages", None)  # kept for a re-analysis in memory; too large to store
    report["sets"] = sets
    report["labels"] = labels
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
