"""Where the retrieval scores of in-scope and out-of-scope questions part, per collection
(figures, not pass/fail; no chat model is loaded).

    PYTHONPATH=. .venv/bin/python benchmarks/scope_scores.py \\
        --set eval/docs_qa.jsonl:/tmp/scope/docs:docs \\
        --set eval/git_qa.jsonl:/tmp/scope/git:git \\
        --set eval/python311_qa.jsonl:/tmp/scope/py:python311 \\
        --off-topic app/rag/off_topic.txt --out benchmarks/scope_scores.json

Each --set is QUESTIONS:DATA_DIR:COLLECTION, a data dir holding the collection ingested.
Every question is searched as the chat service searches it (rag settings' defaults), and
per question these are kept:

- cosine: the best chunk's cosine similarity (what rag.min_score is compared with);
- bm25: the best chunk's BM25 score;
- known: the share of the question's terms that occur anywhere in the collection;
- unknown: the names in the question the collection never mentions (app/rag/scope.py).

Per set and score: the AUC (the chance that an in-scope question scores above an
out-of-scope one) and the share of out-of-scope questions refused at the threshold that
keeps false refusals at or below 10% (an oracle: chosen on the very questions, to show
where the scores part). Then the decisions as docchat makes them, each honest:

- fixed: rag.min_score 0.3 on every collection (before);
- off-topic: the threshold calibrated from the shipped off-topic list alone (no
  question of the set is used), with and without the unknown-names rule;
- questions (5-fold): the threshold calibrated on four fifths of the set's in-scope
  questions (at most 5% of them below it), judged on the fifth left out, every fold in
  turn; the out-of-scope questions never enter a calibration.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.components import load_embedder  # noqa: E402
from app.evaluation.cases import read_cases  # noqa: E402
from app.llm.embedder import Embedder  # noqa: E402
from app.rag.retrieval import Retriever  # noqa: E402
from app.rag.scope import (  # noqa: E402
    off_topic_questions,
    threshold_from_off_topic,
    threshold_from_questions,
    unknown_names,
)
from app.settings import RagSettings, Settings  # noqa: E402
from app.store.db import Database  # noqa: E402
from app.store.lexical import tokens  # noqa: E402
from app.store.vectors import VectorStore  # noqa: E402

SCORES = ("cosine", "bm25", "known")
FOLDS = 5
MAX_FALSE = 0.05


def percentiles(values: list[float], which: tuple[int, ...]) -> list[float]:
    return [round(float(np.percentile(values, p)), 4) for p in which]


def auc(inside: list[float], outside: list[float]) -> float:
    """P(in-scope score > out-of-scope score), ties half."""
    if not inside or not outside:
        return float("nan")
    wins = sum((a > b) + 0.5 * (a == b) for a in inside for b in outside)
    return wins / (len(inside) * len(outside))


def at_threshold(inside: list[float], outside: list[float], t: float) -> dict[str, float]:
    return {
        "threshold": round(t, 4),
        "refused_out_of_scope": round(sum(s < t for s in outside) / len(outside), 4)
        if outside
        else float("nan"),
        "false_refusals": round(sum(s < t for s in inside) / len(inside), 4),
    }


def best_within(inside: list[float], outside: list[float], max_false: float) -> dict[str, float]:
    """The highest threshold whose false refusals stay within max_false."""
    ordered = sorted(inside)
    allowed = int(max_false * len(ordered))  # questions that may fall below
    t = ordered[allowed]  # everything below this one is refused
    return at_threshold(inside, outside, t)


def scores_of(retriever: Retriever, question: str) -> dict[str, float]:
    found = retriever.search_sync(question, retriever.pool)
    cosines = [h.score for h in found]
    assert retriever.lexical is not None
    words = retriever.lexical.search(question, 1)
    terms = set(tokens(question))
    postings = retriever.lexical._postings

    return {
        "cosine": round(max(cosines), 4) if cosines else 0.0,
        "bm25": round(words[0].score, 4) if words else 0.0,
        "known": round(sum(t in postings for t in terms) / len(terms), 4) if terms else 0.0,
        "unknown": unknown_names(question, tokens, lambda t: t in postings),
    }


def decided(rows: list[dict[str, Any]], thresholds: list[float], names: bool) -> dict[str, Any]:
    """Refused shares when row i is judged at thresholds[i] (and, with `names`, refused
    for an unknown name too)."""

    def refused(row: dict[str, Any], t: float) -> bool:
        return row["cosine"] < t or (names and bool(row["unknown"]))

    pairs = list(zip(rows, thresholds, strict=True))
    inside = [refused(r, t) for r, t in pairs if not r["out_of_scope"]]
    outside = [refused(r, t) for r, t in pairs if r["out_of_scope"]]
    return {
        "refused_out_of_scope": round(sum(outside) / len(outside), 4) if outside else None,
        "false_refusals": round(sum(inside) / len(inside), 4),
        "threshold": round(statistics.fmean(thresholds), 4),
    }


def folds_of(rows: list[dict[str, Any]]) -> list[float]:
    """Each row's threshold calibrated without it: in-scope rows by 5-fold over the
    in-scope questions (seeded shuffle), out-of-scope ones at the mean of the folds'."""
    inside = [i for i, r in enumerate(rows) if not r["out_of_scope"]]
    order = np.random.default_rng(23).permutation(len(inside))
    thresholds = [0.0] * len(rows)
    per_fold = []
    for f in range(FOLDS):
        held = {inside[j] for j in order[f::FOLDS]}
        train = [rows[i]["cosine"] for i in inside if i not in held]
        t = threshold_from_questions(train, MAX_FALSE)
        per_fold.append(t)
        for i in held:
            thresholds[i] = t
    for i, r in enumerate(rows):
        if r["out_of_scope"]:
            thresholds[i] = statistics.fmean(per_fold)
    return thresholds


def run_set(spec: str, embedder: Embedder, off_topic: list[str]) -> dict[str, Any]:
    questions, data_dir, collection = spec.split(":")
    cases = read_cases(Path(questions))
    data = Path(data_dir)
    db = Database(f"sqlite:///{data / 'docchat.db'}")
    vectors = VectorStore(url=None, path=data / "chroma", writer=False)
    try:
        retriever = Retriever.configured(
            RagSettings(), embedder, vectors, db, collection, data_dir=data
        )
        rows = [
            {
                "question": c.question,
                "out_of_scope": c.out_of_scope,
                **scores_of(retriever, c.question),
            }
            for c in cases
        ]
        generic = [scores_of(retriever, q) for q in off_topic]
    finally:
        vectors.close()
        db.close()
    result: dict[str, Any] = {
        "set": questions,
        "collection": collection,
        "in_scope": sum(not r["out_of_scope"] for r in rows),
        "out_of_scope": sum(r["out_of_scope"] for r in rows),
    }
    for score in SCORES:
        inside = [r[score] for r in rows if not r["out_of_scope"]]
        outside = [r[score] for r in rows if r["out_of_scope"]]
        result[score] = {
            "auc": round(auc(inside, outside), 4),
            "in_scope_p05_p10_p50": [
                round(float(np.percentile(inside, p)), 4) for p in (5, 10, 50)
            ],
            "out_of_scope_p50_p90_max": [
                round(float(np.percentile(outside, p)), 4) for p in (50, 90)
            ]
            + [max(outside)]
            if outside
            else [],
            "within_10pct_false_refusals": best_within(inside, outside, 0.10),
        }
    cosines = [g["cosine"] for g in generic]
    result["generic_off_topic"] = {
        "n": len(generic),
        "cosine_p50_p90_p95_max": [round(float(np.percentile(cosines, p)), 4) for p in (50, 90, 95)]
        + [max(cosines)],
        "unknown_names": round(sum(bool(g["unknown"]) for g in generic) / len(generic), 4),
    }
    off = threshold_from_off_topic(cosines)
    cv = folds_of(rows)
    n = len(rows)
    result["decisions"] = {
        "fixed 0.3": decided(rows, [0.3] * n, names=False),
        "off-topic": decided(rows, [off] * n, names=False),
        "off-topic + names": decided(rows, [off] * n, names=True),
        "questions 5-fold": decided(rows, cv, names=False),
        "questions 5-fold + names": decided(rows, cv, names=True),
    }
    result["threshold_off_topic"] = round(off, 4)
    result["threshold_all_questions"] = round(
        threshold_from_questions([r["cosine"] for r in rows if not r["out_of_scope"]], MAX_FALSE), 4
    )
    for row, t in zip(rows, cv, strict=True):
        row["threshold_5fold"] = round(t, 4)
        row["threshold_off_topic"] = round(off, 4)
    result["rows"] = rows
    result["generic_rows"] = [{"question": q, **g} for q, g in zip(off_topic, generic, strict=True)]
    return result


def report(result: dict[str, Any]) -> None:
    print(
        f"\n{result['set']} ({result['collection']}): "
        f"{result['in_scope']} in scope, {result['out_of_scope']} out of scope"
    )
    for score in SCORES:
        s = result[score]
        best = s["within_10pct_false_refusals"]
        print(
            f"  {score:7s} AUC {s['auc']:.3f}  in-scope p5/p10/p50 {s['in_scope_p05_p10_p50']}  "
            f"out p50/p90/max {s['out_of_scope_p50_p90_max']}  at <=10% false refusals: "
            f"t={best['threshold']} refuses {best['refused_out_of_scope']} "
            f"(false {best['false_refusals']})"
        )
    g = result["generic_off_topic"]
    print(
        f"  off-topic list ({g['n']}): cosine p50/p90/p95/max {g['cosine_p50_p90_p95_max']}, "
        f"naming something unknown {g['unknown_names']}"
    )
    print(
        f"  thresholds: off-topic {result['threshold_off_topic']}, "
        f"all in-scope questions {result['threshold_all_questions']}"
    )
    for name, d in result["decisions"].items():
        print(
            f"  {name:26s} out of scope refused {d['refused_out_of_scope']}  "
            f"false refusals {d['false_refusals']}  (threshold {d['threshold']})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", required=True, dest="sets")
    parser.add_argument("--off-topic", type=Path, help="default: app/rag/off_topic.txt")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    off_topic = off_topic_questions(args.off_topic) if args.off_topic else off_topic_questions()
    embedder = load_embedder(Settings(_env_file=None), embedding_backend="auto")
    results = [run_set(spec, embedder, off_topic) for spec in args.sets]
    for result in results:
        report(result)
    if args.out:
        args.out.write_text(
            json.dumps({"machine": platform.platform(), "sets": results}, indent=1) + "\n"
        )


if __name__ == "__main__":
    main()
