"""The chat model's answers to a sample of each set with the scope decision taken out,
so that every policy of refusing can be judged on the same answers (figures, not
pass/fail).

    DOCCHAT_DATA_DIR=/tmp/scope/docs PYTHONPATH=. .venv/bin/python \\
        benchmarks/scope_answers.py --set eval/docs_qa.jsonl:docs --in-scope 20 \\
        --out benchmarks/scope_answers_docs.json

Every out-of-scope question of the set and an evenly spread sample of `--in-scope` of
its in-scope ones are answered through the chat service (greedy decoding, one at a
time) with rag.min_score=0 (no question is refused for its score) and
rag.ungrounded_action=flag (the answer as the model wrote it). Kept per question: the
best chunk's cosine, the answer, the grounding verdict, whether the answer says the docs
do not cover it, and the closest passage a user would be shown in place of an
ungrounded answer. benchmarks/scope_policies.py judges the policies on these.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.chat.events import Finished  # noqa: E402
from app.chat.passage import closest_passage  # noqa: E402
from app.chat.question import Question  # noqa: E402
from app.components import build_components  # noqa: E402
from app.evaluation.cases import QACase, contains_expected, read_cases  # noqa: E402
from app.settings import load_settings  # noqa: E402


def sample(cases: list[QACase], n: int) -> list[QACase]:
    """Every out-of-scope case and n in-scope ones spread evenly over the set."""
    inside = [c for c in cases if not c.out_of_scope]
    step = max(1.0, len(inside) / n) if n else float("inf")
    chosen = {int(i * step) for i in range(min(n, len(inside)))}
    return [c for i, c in enumerate(inside) if i in chosen] + [c for c in cases if c.out_of_scope]


async def answer(components: Any, case: QACase) -> dict[str, Any]:
    chat = components.chat
    embed = chat.retriever.embedder.embed
    found = await chat.retriever.search(case.question, chat.retriever.pool)
    row: dict[str, Any] = {
        "question": case.question,
        "out_of_scope": case.out_of_scope,
        "cosine": round(max((h.score for h in found), default=0.0), 4),
    }
    started = time.perf_counter()
    opened = await chat.open(Question(case.question, store=False))
    done = await opened.result()
    row["seconds"] = round(time.perf_counter() - started, 2)
    if not isinstance(done, Finished):
        row["error"] = done.problem.message
        return row
    row["answer"] = done.text
    row["answered_from_docs"] = done.answered_from_docs
    row["grounded"] = done.checks.grounded
    row["grounding_score"] = done.checks.grounding_score
    row["blocked"] = done.checks.blocked
    if not case.out_of_scope:
        row["answer_expected"] = contains_expected(case, done.text)
        if opened.hits:
            passage = await asyncio.to_thread(closest_passage, opened.hits, case.question, embed)
            row["passage_expected"] = contains_expected(case, passage.replace("**", ""))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", required=True, help="FILE:COLLECTION")
    parser.add_argument("--in-scope", type=int, default=20, help="In-scope questions asked.")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    file, _, collection = args.set.partition(":")
    settings = load_settings(
        rag={"min_score": 0.0, "ungrounded_action": "flag"},
        vectors={"collection": collection},
        llm={"temperature": 0.0},
    )
    cases = sample(read_cases(Path(file)), args.in_scope)
    components = build_components(settings, writer=False)
    rows = []
    try:
        components.warm()
        for i, case in enumerate(cases, start=1):
            row = asyncio.run(answer(components, case))
            rows.append(row)
            print(
                f"{i}/{len(cases)} {row['cosine']:.3f} {row.get('grounded')} "
                f"{row['seconds']} s {case.question[:60]!r} -> {row.get('answer', '')[:80]!r}",
                flush=True,
            )
            args.out.write_text(
                json.dumps(
                    {
                        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
                        "model": components.engine.model_id,
                        "set": file,
                        "collection": collection,
                        "rows": rows,
                    },
                    indent=1,
                    ensure_ascii=False,
                )
                + "\n"
            )
    finally:
        components.close()


if __name__ == "__main__":
    main()
