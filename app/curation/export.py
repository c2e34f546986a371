"""Datasets in the shapes other tools read. `openai-chat` is the chat-messages JSONL of
the OpenAI fine-tuning API and Hugging Face TRL: one {"messages": [...]} per line, the
system prompt and the excerpts laid out as docchat's own prompt lays them out (so a
model learns the task it is asked at run time), the approved answer last."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from app.curation.datasets import Snapshot, Split
from app.rag.prompt import SYSTEM_PROMPT, build_messages
from app.store.vectors import Hit

Format = Literal["openai-chat", "jsonl"]
FORMATS: tuple[Format, ...] = ("openai-chat", "jsonl")


def messages_for(row: dict[str, Any]) -> list[dict[str, str]]:
    """One dataset row as plain chat messages: system, the earlier turns, the user turn
    (excerpts and question) and the approved answer as the assistant's."""
    hits = [
        Hit(
            id=str(i),
            text=str(p.get("text") or ""),
            score=1.0,
            metadata={"source": p.get("source") or "", "section": p.get("section") or ""},
        )
        for i, p in enumerate(row.get("passages") or [])
    ]
    history = [(t["role"], t["content"]) for t in row.get("turns") or []]
    messages = build_messages(SYSTEM_PROMPT, str(row["question"]), hits, history)
    messages.append({"role": "assistant", "content": str(row["answer"])})
    return messages


def chat_rows(
    dataset: Snapshot, split: Split | Literal["all"] = "train"
) -> list[list[dict[str, str]]]:
    """The rows of one split as lists of plain {role, content} messages, for training code."""
    return [messages_for(row) for row in dataset.split(split)]


def lines(
    dataset: Snapshot, format: Format = "openai-chat", split: Split | Literal["all"] = "all"
) -> Iterator[str]:
    """The export, one JSON object per line (newline included)."""
    for row in dataset.split(split):
        value: dict[str, Any] = {"messages": messages_for(row)} if format == "openai-chat" else row
        yield json.dumps(value, ensure_ascii=False) + "\n"
