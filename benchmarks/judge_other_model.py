"""A larger model as a second judge of the default model's answers, against the labels.

    PYTHONPATH=. .venv/bin/python benchmarks/judge_checks.py --threads 2 \
        --model-file MODELS/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf --out JUDGE.json
    PYTHONPATH=. .venv/bin/python benchmarks/judge_other_model.py --judge JUDGE.json \
        [--own benchmarks/judge_checks_qwen_bf16.json] [--out FILE]

judge_checks.py with --model-file scores the default model's labelled answers with
another model: the prompt the chat service gave, the answer after it, then the yes/no
questions (and the other model's probabilities for the answer's tokens). This script
adds each of those scores, below a bound, to the checks docchat keeps (grounding score,
paired terms, the answering model's own self-check from --own at its catalog floor, and
its confidence floor; `--base self-check` leaves the floor out, as it was measured):
the bound is chosen on the dev half (the most wrong answers flagged while flagging at
most a tenth of the right ones more than the kept checks), then measured on the
held-out half; per set, what the user is shown (answer_checks.before_after) with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from answer_checks import (  # noqa: E402
    SERVED,
    WITH_MODEL,
    Labelled,
    before_after,
    checks,
    read_labelled,
    read_scores,
)
from judge_checks import best_bound, rate  # noqa: E402

from app.components import load_embedder  # noqa: E402
from app.settings import load_settings  # noqa: E402

SCORE_NAMES = ("judge_supported", "judge_correct", "judge_answered", "mean_logprob")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--judge", type=Path, action="append", required=True, help="judge_checks.py reports"
    )
    parser.add_argument(
        "--own",
        type=Path,
        action="append",
        help="the answering model's own scores (its self-check, as served; default: the "
        "BF16 file's, benchmarks/judge_checks_qwen_bf16.json)",
    )
    parser.add_argument(
        "--fixed",
        action="append",
        default=[],
        help="NAME=BOUND: measure this bound for the score instead of choosing one (a "
        "confidence floor c is mean_logprob=ln(c))",
    )
    parser.add_argument(
        "--base",
        choices=["served", "self-check"],
        default="served",
        help="the checks the score is added to: those served (with the confidence floor) "
        "or those before the floor (grounding, terms, self-check)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    read_scores(args.own or [ROOT / "benchmarks" / "judge_checks_qwen_bf16.json"])
    reports = [json.loads(path.read_text(encoding="utf-8")) for path in args.judge]
    answers_of = reports[0]["answers_of"]
    answers = [a for report in reports for a in report["answers"]]
    other = {(a["set"], answers_of, a["question"]): a for a in answers}
    rows = [r for r in read_labelled() if r.model == answers_of]
    scored = [r for r in rows if (r.set, r.model, r.question) in other]
    kept_check = checks()[SERVED if args.base == "served" else WITH_MODEL]
    kept = {id(r): kept_check(r) for r in rows}
    dev = [r for r in scored if r.half == "dev"]
    held = [r for r in scored if r.half == "held-out"]
    embedder = load_embedder(load_settings())
    report: dict[str, Any] = {
        "base": args.base,
        "judge": [str(p) for p in args.judge],
        "own": [str(p) for p in args.own or []],
        "answers_of": answers_of,
        "scored": len(scored),
        "seconds_per_answer": round(
            sum(a["seconds_answer_eval"] + a["seconds_judges"] for a in answers) / len(answers),
            2,
        ),
        "kept": {
            half: {"wrong": rate(g, kept, "wrong"), "right": rate(g, kept, "right")}
            for half, g in (("dev", dev), ("held-out", held), ("all", scored))
        },
        "checks": {},
    }
    print(f"# {len(scored)} answers scored; kept checks: {json.dumps(report['kept'])}")
    print(f"# {report['seconds_per_answer']} s per answer for the judge")
    fixed = {k: float(v) for k, _, v in (item.partition("=") for item in args.fixed)}
    for name in fixed or SCORE_NAMES:
        values = {id(r): float(other[(r.set, r.model, r.question)][name]) for r in scored}
        bound = fixed[name] if name in fixed else best_bound(dev, values, kept)

        def with_judge(row: Labelled, bound: float = bound, name: str = name) -> bool:
            item = other.get((row.set, row.model, row.question))
            return kept[id(row)] or (item is not None and float(item[name]) < bound)

        flags = {id(r): with_judge(r) for r in scored}

        wrong = [values[id(r)] for r in scored if r.label == "wrong"]
        right = [values[id(r)] for r in scored if r.label == "right"]
        pairs = [(w < x) + 0.5 * (w == x) for w in wrong for x in right]
        line: dict[str, Any] = {
            "bound (dev)": round(bound, 4),
            "auc": round(sum(pairs) / len(pairs), 3) if pairs else None,
        }
        for half, group in (("dev", dev), ("held-out", held), ("all", scored)):
            line[half] = {label: rate(group, flags, label) for label in ("wrong", "right")}
        line["sets"] = before_after(rows, with_judge, embedder)
        report["checks"][name] = line
        print(name, json.dumps({k: v for k, v in line.items() if k != "sets"}))
        for set_name, f in line["sets"].items():
            print(
                f"  {set_name}: expected shown {f['expected_shown_before']} -> "
                f"{f['expected_shown_after']}, wrong unflagged {f['wrong_unflagged_before']}"
                f" -> {f['wrong_unflagged_after']}"
            )
    kept_sets = before_after(rows, kept_check, embedder)
    report["kept_sets"] = kept_sets
    for set_name, f in kept_sets.items():
        print(f"  kept {set_name}: {f}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
