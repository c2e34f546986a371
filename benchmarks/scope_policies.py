"""What a user sees under each way of refusing, judged on the same answers (figures, not
pass/fail; reads what benchmarks/scope_answers.py and benchmarks/scope_scores.py wrote).

    .venv/bin/python benchmarks/scope_policies.py \\
        --answers benchmarks/scope_answers_docs.json --scores benchmarks/scope_scores.json \\
        --out benchmarks/scope_policies.json

Per question of the answered sample, the scores file gives the held-out thresholds (the
5-fold one, calibrated without the question, and the off-topic one, calibrated on no
question of the set) and the names the collection never mentions. The policies:

- before: rag.min_score 0.3 on every collection; an unsupported answer gives way to the
  closest passage (rag.ungrounded_action=passages), a model's refusal among them;
- retrieval: the calibrated threshold and the unknown-names rule, the rest as before;
- + model refusal: and an answer in which the model says the docs do not cover the
  question ends in that refusal, never in the closest passage.

Figures over the sample: out-of-scope refused, in-scope refused (false refusals), and
in-scope questions whose shown text (answer or passage) holds the expected phrases.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.rag.scope import says_not_covered  # noqa: E402

Shown = tuple[bool, bool | None]  # refused, holds the expected phrases (in scope)


def before(row: dict[str, Any], score: dict[str, Any]) -> Shown:
    if row["cosine"] < 0.3:
        return True, False
    return after_retrieval(row)


def after_retrieval(row: dict[str, Any]) -> Shown:
    """What the chat shows once retrieval let the question through (as before)."""
    if row.get("blocked") or "answer" not in row:
        return False, False
    if row.get("grounded") is False:  # the closest passage in its place: not a refusal
        return False, bool(row.get("passage_expected"))
    if says_not_covered(row["answer"]):
        return True, False
    return False, bool(row.get("answer_expected"))


def calibrated(
    which: str, model_refusal: bool
) -> Callable[[dict[str, Any], dict[str, Any]], Shown]:
    def policy(row: dict[str, Any], score: dict[str, Any]) -> Shown:
        if row["cosine"] < score[which] or score["unknown"]:
            return True, False
        if model_refusal and "answer" in row and says_not_covered(row["answer"]):
            return True, False
        return after_retrieval(row)

    return policy


POLICIES = {
    "before (min_score 0.3, passages)": before,
    "retrieval (5-fold threshold + names)": calibrated("threshold_5fold", False),
    "+ model refusal (5-fold)": calibrated("threshold_5fold", True),
    "retrieval (off-topic threshold + names)": calibrated("threshold_off_topic", False),
    "+ model refusal (off-topic)": calibrated("threshold_off_topic", True),
}


def judge(answers: dict[str, Any], scores: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    rows = [r for r in answers["rows"] if "error" not in r]
    figures: dict[str, Any] = {
        "set": answers["set"],
        "model": answers["model"],
        "in_scope": sum(not r["out_of_scope"] for r in rows),
        "out_of_scope": sum(r["out_of_scope"] for r in rows),
        "policies": {},
    }
    for name, policy in POLICIES.items():
        shown = [(r, policy(r, scores[answers["set"], r["question"]])) for r in rows]
        inside = [s for r, s in shown if not r["out_of_scope"]]
        outside = [s for r, s in shown if r["out_of_scope"]]
        figures["policies"][name] = {
            "refused_out_of_scope": round(sum(s[0] for s in outside) / len(outside), 4),
            "false_refusals": round(sum(s[0] for s in inside) / len(inside), 4),
            "expected": round(sum(bool(s[1]) for s in inside) / len(inside), 4),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=Path, action="append", required=True)
    parser.add_argument("--scores", type=Path, action="append", required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    # Keyed by set too: the sets share a few out-of-scope questions.
    scores = {
        (result["set"], row["question"]): row
        for path in args.scores
        for result in json.loads(path.read_text())["sets"]
        for row in result["rows"]
    }
    results = [judge(json.loads(p.read_text()), scores) for p in args.answers]
    for result in results:
        print(
            f"\n{result['set']} ({result['model']}): {result['in_scope']} in scope, "
            f"{result['out_of_scope']} out of scope answered"
        )
        for name, f in result["policies"].items():
            print(
                f"  {name:42s} out of scope refused {f['refused_out_of_scope']:.2f}  false "
                f"refusals {f['false_refusals']:.2f}  expected {f['expected']:.2f}"
            )
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
