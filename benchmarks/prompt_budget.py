"""Benchmark: the excerpt budget (rag.context_tokens) and the answer cap
(llm.answer_tokens) against answer quality and speed, on several question sets, one
model, in one process.

    DOCCHAT_DATA_DIR=/tmp/ev28 .venv/bin/python benchmarks/prompt_budget.py \\
        --budget 1200 --budget 800 --budget 400 [--cap 384 --cap 192] \\
        --set eval/docs_qa.jsonl:docs --set eval/git_manual_qa.jsonl:gitman \\
        [--limit 40] [--out benchmarks/prompt_budget.json]

For each budget and set: the share of in-scope answers holding what they should
(expected), wrong answers that the checks did not flag (wrong and judged grounded, as
a share of in-scope answers), false refusals, out-of-scope refusals, prompt tokens, and
time to first token and whole answer p50/p95 (greedy, one question at a time, the
active model: to measure another, activate it in a copy of the data directory, since
a second engine in the process slows the first one's decoding; its self-check runs
only where its file has a measured floor or DOCCHAT_RAG__SELF_CHECK sets one). Budgets
and caps are interleaved per set so that load on the machine falls on all of them
alike. "cut" counts the in-scope answers that reached the cap and were still shown as
written (the page marks them unfinished). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.components import build_components  # noqa: E402
from app.evaluation.answers import AnswerReport, evaluate_answers  # noqa: E402
from app.evaluation.cases import read_cases  # noqa: E402
from app.settings import load_settings  # noqa: E402


def row(budget: int, cap: int, name: str, report: AnswerReport) -> dict[str, Any]:
    inside = [r for r in report.results if not r.out_of_scope]
    wrong_unflagged = [
        r for r in inside if not r.refused and r.contains_expected is False and r.grounded
    ]
    shown_cut = [r for r in inside if r.grounded and r.finish_reason == "length"]
    return {
        "budget": budget,
        "cap": cap,
        "set": name,
        "in_scope": len(inside),
        "expected": report.expected,
        "wrong_unflagged": round(len(wrong_unflagged) / max(1, len(inside)), 3),
        "false_refusals": report.false_refusals,
        "cut": len(shown_cut),
        "refused_out_of_scope": report.refused_out_of_scope,
        "prompt_tokens_mean": report.prompt_tokens_mean,
        "first_token_p50_s": report.first_token_p50_s,
        "first_token_p95_s": report.first_token_p95_s,
        "total_p50_s": report.total_p50_s,
        "total_p95_s": report.total_p95_s,
        # Each answer (every field), so that runs can be compared question by question.
        "results": report.as_dict()["results"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, action="append", required=True)
    parser.add_argument("--cap", type=int, action="append", help="llm.answer_tokens values")
    parser.add_argument("--set", action="append", required=True, help="FILE:COLLECTION")
    parser.add_argument("--limit", type=int, help="Only the first N questions of each set.")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = load_settings(llm={"temperature": 0.0})
    caps = args.cap or [settings.llm.answer_budget()]
    base = build_components(settings, writer=False)
    rows: list[dict[str, Any]] = []
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(
        "| set | budget | cap | expected | wrong unflagged | cut | false refusals | "
        "out-of-scope refused | prompt tokens | first token p50 / p95 s | answer p50 / p95 s |"
    )
    print("| --- " * 11 + "|")
    try:
        base.warm()
        for spec in args.set:
            file, _, collection = spec.partition(":")
            cases = read_cases(Path(file))[: args.limit]
            for budget, cap in itertools.product(args.budget, caps):
                scoped = settings.model_copy(
                    update={
                        "vectors": settings.vectors.model_copy(update={"collection": collection}),
                        "rag": settings.rag.model_copy(update={"context_tokens": budget}),
                        # The ceiling raised too where needed, or it would cut the cap.
                        "llm": settings.llm.model_copy(
                            update={
                                "answer_tokens": cap,
                                "max_tokens": max(cap, settings.llm.max_tokens),
                            }
                        ),
                    }
                )
                components = base.using(settings=scoped)
                report = asyncio.run(evaluate_answers(components.chat, cases))
                r = row(budget, cap, Path(file).name, report)
                rows.append(r)
                print(
                    f"| {r['set']} | {budget} | {cap} | {r['expected']:.2f} | "
                    f"{r['wrong_unflagged']:.2f} | {r['cut']} | {r['false_refusals']:.2f} | "
                    f"{r['refused_out_of_scope']:.2f} | {r['prompt_tokens_mean']:.0f} | "
                    f"{r['first_token_p50_s']:.1f} / {r['first_token_p95_s']:.1f} | "
                    f"{r['total_p50_s']:.1f} / {r['total_p95_s']:.1f} |",
                    flush=True,
                )
    finally:
        base.close()
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
