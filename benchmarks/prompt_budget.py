"""Benchmark: the excerpt budget (rag.context_tokens) against answer quality and speed,
on several question sets, one model, in one process.

    DOCCHAT_DATA_DIR=/tmp/ev28 .venv/bin/python benchmarks/prompt_budget.py \\
        --budget 1200 --budget 800 --budget 400 \\
        --set eval/docs_qa.jsonl:docs --set eval/git_manual_qa.jsonl:gitman \\
        [--limit 40] [--out benchmarks/prompt_budget.json]

For each budget and set: the share of in-scope answers holding what they should
(expected), wrong answers that the checks did not flag (wrong and judged grounded, as
a share of in-scope answers), false refusals, out-of-scope refusals, prompt tokens, and
time to first token and whole answer p50/p95 (greedy, one question at a time, the
active model: to measure another, activate it in a copy of the data directory, since
a second engine in the process slows the first one's decoding; its self-check runs
only where its file has a measured floor or DOCCHAT_RAG__SELF_CHECK sets one). Budgets
are interleaved per set so that load on the machine falls on all of them alike. Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
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


def row(budget: int, name: str, report: AnswerReport) -> dict[str, Any]:
    inside = [r for r in report.results if not r.out_of_scope]
    wrong_unflagged = [
        r for r in inside if not r.refused and r.contains_expected is False and r.grounded
    ]
    return {
        "budget": budget,
        "set": name,
        "in_scope": len(inside),
        "expected": report.expected,
        "wrong_unflagged": round(len(wrong_unflagged) / max(1, len(inside)), 3),
        "false_refusals": report.false_refusals,
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
    parser.add_argument("--set", action="append", required=True, help="FILE:COLLECTION")
    parser.add_argument("--limit", type=int, help="Only the first N questions of each set.")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = load_settings(llm={"temperature": 0.0})
    base = build_components(settings, writer=False)
    rows: list[dict[str, Any]] = []
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(
        "| set | budget | expected | wrong unflagged | false refusals | out-of-scope "
        "refused | prompt tokens | first token p50 / p95 s | answer p50 / p95 s |"
    )
    print("| --- " * 9 + "|")
    try:
        base.warm()
        for spec in args.set:
            file, _, collection = spec.partition(":")
            cases = read_cases(Path(file))[: args.limit]
            for budget in args.budget:
                scoped = settings.model_copy(
                    update={
                        "vectors": settings.vectors.model_copy(update={"collection": collection}),
                        "rag": settings.rag.model_copy(update={"context_tokens": budget}),
                    }
                )
                components = base.using(settings=scoped)
                report = asyncio.run(evaluate_answers(components.chat, cases))
                r = row(budget, Path(file).name, report)
                rows.append(r)
                print(
                    f"| {r['set']} | {budget} | {r['expected']:.2f} | "
                    f"{r['wrong_unflagged']:.2f} | {r['false_refusals']:.2f} | "
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
