"""The chat model asked, before it answers, whether the excerpts answer the question
(a scope probe): its P(yes) per question of a set, for the questions the retrieval's
scope decision lets through (figures, not pass/fail).

    DOCCHAT_DATA_DIR=/tmp/scope/docs PYTHONPATH=. .venv/bin/python \\
        benchmarks/scope_probe.py --set eval/docs_qa.jsonl:docs --out /tmp/probe_docs.json

The probe is the answer's own prompt with a sentence appended to the user turn, so it
shares everything up to the question with the prompt the answer is then given (the
engine keeps the probe's cache: app/llm/kept.py) and each wording after the first costs
only its own tokens. Each wording's share is read from the first token's logits, as the
self-check's is (app/chat/self_check.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.components import build_components  # noqa: E402
from app.evaluation.cases import read_cases  # noqa: E402
from app.settings import load_settings  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from answer_checks import half  # noqa: E402

WORDINGS = {
    "contain": "Before you answer: do the excerpts above contain the answer to this "
    "question? Reply with yes or no.",
    "stated": "Is the answer to this question stated in the excerpts? Reply with yes or no.",
    "about": "Do the excerpts say anything about what this question asks? Reply with yes or no.",
    "answerable": "Can this question be answered from the excerpts above? Reply with yes or no.",
    "mention": "Do the excerpts mention the very thing this question is about? Reply with "
    "yes or no.",
}


async def probe(chat: Any, question: str) -> dict[str, Any]:
    prompt = await chat.prompt_for(question)
    row: dict[str, Any] = {"question": question, "half": half(question)}
    if prompt is None:
        row["refused_by_retrieval"] = True
        return row
    row["refused_by_retrieval"] = False
    engine = chat.engine
    row["prompt_tokens"] = prompt.n_tokens
    shares = {}
    seconds = {}
    for name, wording in WORDINGS.items():
        messages = [dict(m) for m in prompt.messages]
        messages[-1]["content"] += "\n\n" + wording
        asked = engine.format(messages)
        started = time.monotonic()
        shares[name] = await engine.yes_share(asked, deadline=time.monotonic() + 300)
        seconds[name] = round(time.monotonic() - started, 3)
    row["shares"] = shares
    row["seconds"] = seconds
    return row


async def run(chat: Any, cases: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for case in cases:
        row = await probe(chat, case.question)
        row["out_of_scope"] = case.out_of_scope
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", required=True, help="FILE:COLLECTION")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    file, _, collection = args.set.partition(":")
    settings = load_settings(llm={"temperature": 0.0}, vectors={"collection": collection})
    components = build_components(settings, writer=False)
    try:
        components.warm()
        cases = read_cases(Path(file))[: args.limit]
        rows = asyncio.run(run(components.chat, cases))
    finally:
        components.close()
    args.out.write_text(json.dumps({"set": args.set, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
