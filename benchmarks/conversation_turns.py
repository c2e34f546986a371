"""Benchmark: a three-turn conversation's time to first token per turn, with the earlier
turns sent compactly (docchat before 2026-12-06: each follow-up evaluated from the system
prompt on) and warm (the previous prompt and answer reused from the engine's cache).

    DOCCHAT_DATA_DIR=/tmp/ev28 .venv/bin/python benchmarks/conversation_turns.py \\
        --collection docs [--rounds 2] [--out benchmarks/conversation_turns.json]

Each conversation is asked both ways, one after the other, on the same engine (greedy,
one at a time). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.chat.events import Finished  # noqa: E402
from app.chat.question import Question  # noqa: E402
from app.chat.warm_turns import WarmTurns  # noqa: E402
from app.components import build_components  # noqa: E402
from app.settings import load_settings  # noqa: E402

# Asked the way a user asks: the follow-ups lean on the turn before.
CONVERSATIONS = [
    [
        "How do I add our product docs to docchat?",
        "Can it leave some of the files out?",
        "And what happens when I delete a file later?",
    ],
    [
        "How do I make an API key for a script?",
        "Can I make it stop working after a while?",
        "How do I revoke it if it leaks?",
    ],
    [
        "How do I run docchat with Docker?",
        "How do I keep the data when the container restarts?",
        "Can it use PostgreSQL instead of SQLite?",
    ],
    [
        "Where can I see docchat's metrics?",
        "Which alerts does it raise?",
        "What should I do when the error rate alert fires?",
    ],
]


async def converse(chat: Any, turns: list[str], collection: str) -> list[dict[str, Any]]:
    conversation: str | None = None
    rows = []
    for text in turns:
        answer = await chat.open(
            Question(text, conversation_id=conversation, collection=collection)
        )
        result = await answer.result()
        if not isinstance(result, Finished) or result.stats is None:
            rows.append({"question": text, "answered": False})
            conversation = getattr(result, "conversation_id", conversation)
            continue
        conversation = result.conversation_id
        stats = result.stats
        rows.append(
            {
                "question": text,
                "answered": True,
                "ttft_s": round(stats.time_to_first_token_s or 0.0, 3),
                "total_s": round(stats.total_s, 3),
                "prompt_tokens": stats.prompt_tokens,
                "reused_tokens": stats.prefix_reused,
            }
        )
    return rows


def summary(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for turn in range(3):
        rows = [r[turn] for r in runs if len(r) > turn and r[turn].get("answered")]
        if not rows:
            out.append({"turn": turn + 1, "answers": 0})
            continue
        ttft = sorted(r["ttft_s"] for r in rows)
        out.append(
            {
                "turn": turn + 1,
                "answers": len(rows),
                "ttft_p50_s": round(statistics.median(ttft), 2),
                "ttft_max_s": round(ttft[-1], 2),
                "prompt_tokens_mean": round(statistics.mean(r["prompt_tokens"] for r in rows)),
                "evaluated_tokens_mean": round(
                    statistics.mean(r["prompt_tokens"] - r["reused_tokens"] for r in rows)
                ),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="docs")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = load_settings(llm={"temperature": 0.0})
    components = build_components(settings, writer=False)
    components.warm()
    chat = components.chat
    runs: dict[str, list[list[dict[str, Any]]]] = {"compact": [], "warm": []}
    try:
        for _ in range(args.rounds):
            for turns in CONVERSATIONS:
                for mode in ("compact", "warm"):
                    # compact: nothing remembered, as before; warm: the service's own.
                    chat.warm = WarmTurns(max_age_s=1e-9 if mode == "compact" else 900)
                    runs[mode].append(asyncio.run(converse(chat, turns, args.collection)))
    finally:
        components.close()
    figures = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "model": components.engine.model_id,
        "per_turn": {mode: summary(r) for mode, r in runs.items()},
        "runs": runs,
    }
    print(f"# {figures['machine']}, model {figures['model']}")
    print("| mode | turn | answers | TTFT p50 s | TTFT max s | prompt tokens | evaluated |")
    print("| --- " * 7 + "|")
    for mode, turns in figures["per_turn"].items():
        for t in turns:
            if t["answers"]:
                print(
                    f"| {mode} | {t['turn']} | {t['answers']} | {t['ttft_p50_s']} | "
                    f"{t['ttft_max_s']} | {t['prompt_tokens_mean']} | "
                    f"{t['evaluated_tokens_mean']} |"
                )
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
