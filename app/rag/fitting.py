"""Fit a prompt to the model's context in one pass: the excerpts and the question
first, then as many of the newest earlier turns as there is room for.

Each turn is counted once, newest first, and counting stops where the room ends, so
the cost is bounded by the context size however long the history a client sends.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.llm.base import ChatEngine, Prompt, PromptTooLong
from app.rag.prompt import build_messages
from app.store.vectors import Hit

# Tries after the one-pass count, each dropping the oldest remaining question/answer
# pair, in case a count erred low (e.g. tokens merging across a message boundary).
RECOUNTS = 3


@dataclass(frozen=True)
class FittedPrompt:
    """The prompt, the excerpts it holds (weakest dropped first) and how many of the
    earlier turns it kept."""

    prompt: Prompt
    hits: list[Hit]
    turns: int


def fit_prompt(
    engine: ChatEngine,
    system: str,
    question: str,
    hits: list[Hit],
    history: list[tuple[str, str]],
    extra_system: str,
    max_tokens: int,
) -> FittedPrompt:
    """The largest prompt that leaves `max_tokens` of room in the context; raises
    PromptTooLong when not even the question with one excerpt fits (blocking)."""
    hits = list(hits)
    while True:
        prompt = engine.format(build_messages(system, question, hits, [], extra_system))
        try:
            engine.check_fits(prompt, max_tokens)
            break
        except PromptTooLong:
            if len(hits) <= 1:
                raise
            hits.pop()
    turns = newest_that_fit(engine, history, engine.n_ctx - max_tokens - prompt.n_tokens)
    for _ in range(RECOUNTS):
        if not turns:
            break
        full = engine.format(build_messages(system, question, hits, turns, extra_system))
        try:
            engine.check_fits(full, max_tokens)
            return FittedPrompt(full, hits, len(turns))
        except PromptTooLong:
            turns = without_oldest_pair(turns)
    return FittedPrompt(prompt, hits, 0)


def newest_that_fit(
    engine: ChatEngine, history: list[tuple[str, str]], room: int
) -> list[tuple[str, str]]:
    """The newest turns whose tokens fit `room`, oldest first, starting with a question."""
    kept = 0
    for role, content in reversed(history):
        cost = engine.message_tokens({"role": role, "content": content})
        if cost > room:
            break
        room -= cost
        kept += 1
    turns = history[len(history) - kept :]
    # A model reads a history that opens with an answer to nothing as noise.
    while turns and turns[0][0] != "user":
        turns = turns[1:]
    return turns


def without_oldest_pair(turns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The turns after the oldest question and whatever answered it."""
    rest = turns[1:]
    while rest and rest[0][0] != "user":
        rest = rest[1:]
    return rest
