"""The answer evaluation of several registered models on several question sets, side by
side, and what a user would see under each `rag.ungrounded_action` (figures, not
pass/fail).

    DOCCHAT_DATA_DIR=/tmp/ev .venv/bin/python benchmarks/answer_models.py \\
        --model smollm2 --model qwen --set eval/docs_qa.jsonl:docs \\
        --set eval/python311_qa.jsonl:python311 --out benchmarks/answer_models.json

Each model answers every question once through the chat service (greedy decoding by
default, so a rerun gives the same answers), one question at a time on this machine.
The three policies are judged on the same answers: "flag" shows the answer as written,
"replace" turns an ungrounded one into a refusal, "passages" shows the closest passage
in its place (judged for the expected phrases like an answer).
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

from app.chat.passage import closest_passage  # noqa: E402
from app.components import build_components, load_model  # noqa: E402
from app.evaluation.answers import AnswerReport, evaluate_answers  # noqa: E402
from app.evaluation.cases import QACase, contains_expected, read_cases  # noqa: E402
from app.releases.registry import Registry  # noqa: E402
from app.settings import load_settings  # noqa: E402


async def policies(chat: Any, cases: list[QACase], report: AnswerReport) -> dict[str, Any]:
    """Expected-phrase share and false refusals (in scope) under each policy."""
    inside = [(c, r) for c, r in zip(cases, report.results, strict=True) if not c.out_of_scope]
    judged = [(c, r) for c, r in inside if c.has_expectations]
    replace_hits = passage_hits = 0
    for case, result in judged:
        ungrounded = result.grounded is False and not result.refused
        if not ungrounded:
            replace_hits += bool(result.contains_expected)
            passage_hits += bool(result.contains_expected)
            continue
        hits = await chat.retriever.relevant(case.question)
        if hits and contains_expected(case, closest_passage(hits)):
            passage_hits += 1
    refused = sum(1 for _, r in inside if r.refused)
    ungrounded_answers = sum(1 for _, r in inside if r.grounded is False and not r.refused)
    n = max(1, len(judged))
    return {
        "flag": {"expected": report.expected, "false_refusals": report.false_refusals},
        "replace": {
            "expected": round(replace_hits / n, 4),
            "false_refusals": round((refused + ungrounded_answers) / max(1, len(inside)), 4),
        },
        "passages": {
            "expected": round(passage_hits / n, 4),
            "false_refusals": report.false_refusals,
        },
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    settings = load_settings(llm={"temperature": args.temperature})
    base = build_components(settings, writer=False)
    rows = []
    try:
        registry = Registry(base.db)
        for name in args.model:
            entry = registry.model(name)
            engine = load_model(settings, entry)
            try:
                for spec in args.set:
                    file, _, collection = spec.partition(":")
                    cases = read_cases(Path(file))[: args.limit]
                    scoped = settings.model_copy(
                        update={
                            "vectors": settings.vectors.model_copy(
                                update={"collection": collection or settings.vectors.collection}
                            )
                        }
                    )
                    components = base.using(engine=engine, settings=scoped)
                    components.warm()
                    report = asyncio.run(evaluate_answers(components.chat, cases))
                    by_policy = asyncio.run(policies(components.chat, cases, report))
                    row = {
                        "model": name,
                        "sha256": entry.sha256,
                        "set": Path(file).name,
                        "collection": collection,
                        "report": report.as_dict(with_results=args.with_results),
                        "policies": by_policy,
                    }
                    rows.append(row)
                    print_row(row)
            finally:
                engine.close()
    finally:
        base.close()
    return rows


def print_row(row: dict[str, Any]) -> None:
    r = row["report"]
    p = row["policies"]
    print(
        f"| {row['model']} | {row['set']} | {r['expected']:.2f} | {r['grounded']:.2f} | "
        f"{r['cited']:.2f} | {r['false_refusals']:.2f} | {r['refused_out_of_scope']:.2f} | "
        f"{r['first_token_p50_s']:.1f} / {r['first_token_p95_s']:.1f} | "
        f"{r['total_p50_s']:.1f} / {r['total_p95_s']:.1f} | {r['completion_tokens_mean']:.0f} | "
        f"{p['replace']['expected']:.2f} | {p['passages']['expected']:.2f} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="Registered model.")
    parser.add_argument("--set", action="append", required=True, help="FILE:COLLECTION")
    parser.add_argument("--limit", type=int, help="Only the first N questions of each set.")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--with-results", action="store_true", help="Keep every answer.")
    parser.add_argument("--out", type=Path, help="Write the figures as JSON here too.")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(
        "| model | set | expected | grounded | cited | false refusals | out-of-scope "
        "refused | first token p50 / p95 s | answer p50 / p95 s | tokens | expected "
        "(replace) | expected (passages) |"
    )
    print("| --- " * 12 + "|")
    rows = run(args)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
