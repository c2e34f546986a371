"""What the self-check (app/chat/self_check.py) costs per answer, in the engine.

    DOCCHAT_DATA_DIR=... PYTHONPATH=. .venv/bin/python benchmarks/self_check_cost.py \
        --set eval/docs_qa.jsonl:docs [--limit 8]

Each in-scope question is answered through the chat service with the self-check off;
right after, with the answer's cache still held by the engine (as in service), the
model is asked whether its answer is supported, and that call is timed, with the
tokens it had to evaluate (the judge prompt less what the engine held). Printed beside
the answer's own time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.chat.events import Finished  # noqa: E402
from app.chat.question import Question  # noqa: E402
from app.chat.self_check import QUESTION, self_check  # noqa: E402
from app.components import build_components  # noqa: E402
from app.evaluation.cases import read_cases  # noqa: E402
from app.settings import load_settings  # noqa: E402


async def measure(chat: Any, question: str) -> dict[str, Any] | None:
    began = time.monotonic()
    answer = await chat.open(Question(question, store=False))
    final = await answer.result()
    spent = time.monotonic() - began
    if not isinstance(final, Finished) or answer.prompt is None or final.notice is not None:
        return None  # in service only answers shown as written are asked
    engine, prompt = answer.engine, answer.prompt
    judge = engine.format(
        [
            *prompt.messages,
            {"role": "assistant", "content": final.text},
            {"role": "user", "content": QUESTION},
        ]
    )
    held = engine.cached_tokens(judge)
    started = time.monotonic()
    share = await self_check(engine, prompt, final.text, time.monotonic() + 120)
    return {
        "question": question,
        "answer_s": round(spent, 2),
        "self_check_s": round(time.monotonic() - started, 3),
        "judge_tokens": judge.n_tokens,
        "new_tokens": judge.n_tokens - held,
        "share": share,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", required=True, help="FILE:COLLECTION")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    file, _, collection = args.set.partition(":")
    settings = load_settings(llm={"temperature": 0.0})
    settings = settings.model_copy(
        update={
            "vectors": settings.vectors.model_copy(update={"collection": collection}),
            "rag": settings.rag.model_copy(update={"self_check": None}),
        }
    )
    components = build_components(settings, writer=False)
    rows = []
    try:
        components.warm()
        cases = [c for c in read_cases(Path(file)) if not c.out_of_scope][: args.limit]
        for case in cases:
            row = asyncio.run(measure(components.chat, case.question))
            if row is not None:
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        components.close()
    summary = {
        "answers": len(rows),
        "answer_s_median": statistics.median(r["answer_s"] for r in rows),
        "self_check_s_median": statistics.median(r["self_check_s"] for r in rows),
        "self_check_s_max": max(r["self_check_s"] for r in rows),
        "new_tokens_median": statistics.median(r["new_tokens"] for r in rows),
    }
    print(json.dumps(summary))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
