"""One generation as the batch worker sees it, and the loop check on what it wrote."""

from __future__ import annotations

import codecs
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.llm.lookup import PromptLookup


@dataclass(eq=False)  # identity: jobs live in sets and lists
class Job:
    """One generation as the worker sees it."""

    tokens: list[int]
    max_tokens: int
    temperature: float
    seed: int
    repeat_penalty: float
    deadline: float
    # Called from the worker thread: ("text", str) | ("end", reason) | ("error", exc)
    emit: Callable[[str, Any], None]
    # Decode all max_tokens even past an end-of-generation token (benchmarks, whose
    # figures would otherwise mix in answers that ended early).
    ignore_eos: bool = False
    # Stop when the answer's last tokens repeat one block this many times in a row (a
    # small model stuck in a loop would otherwise write until max_tokens); 0: never.
    stop_repeats: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    admitted_at: float | None = None
    prefix_reused: int = 0
    # Worker state.
    seq: int = -1
    evaluated: int = 0  # prompt tokens in the sequence's cache so far
    cells: int = 0  # tokens (prompt, then answer) the sequence's cache holds
    pos: int = 0
    produced: int = 0
    last: int = 0
    sampler: Any = None
    written: list[int] = field(default_factory=list)
    decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("ignore"))
    lookup: PromptLookup | None = None  # drafts from its own prompt (greedy jobs)
    logprobs: list[float] = field(default_factory=list)  # of each token written
    # A yes/no question's answer tokens (yes ids, no ids): the first token's P(yes) /
    # (P(yes) + P(no)) is kept in `choice_share` (app/chat/self_check.py).
    choices: tuple[list[int], list[int]] | None = None
    choice_share: float | None = None


# Shortest and longest repeated block `looping` looks for, in tokens.
LOOP_MIN_TOKENS = 8
LOOP_MAX_TOKENS = 96


def looping(tokens: list[int], repeats: int) -> bool:
    """Whether the tokens end with one block written `repeats` times in a row."""
    for size in range(LOOP_MIN_TOKENS, min(LOOP_MAX_TOKENS, len(tokens) // repeats) + 1):
        block = tokens[-size:]
        if all(
            tokens[-size * (k + 1) : len(tokens) - size * k] == block for k in range(1, repeats)
        ):
            return True
    return False
