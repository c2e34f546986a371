"""A conversation's last prompt as the model read it, so that a follow-up can start
with it and pay only for its new tokens.

A follow-up's prompt normally carries the earlier turns compactly: the questions and
answers, without the excerpts retrieved for them. It then shares only the system prompt
with the turn before, and the whole history is evaluated again. But the engine keeps a
finished answer's cache (app/llm/kept.py): written as the previous prompt, its answer
and the new turn, the follow-up starts with what the engine holds. Which of the two is
sent is decided by cost, per question: the prompt that leaves fewer tokens to evaluate
(the warm one also shows the model the earlier excerpts; once the engine has dropped
that cache, or the conversation went to another replica, the compact one is cheaper).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from app.llm.base import ChatEngine
from app.rag.fitting import FittedPrompt, fit_prompt
from app.rag.prompt import user_message
from app.store.vectors import Hit
from common.control_tokens import strip_control_tokens

Turns = list[tuple[str, str]]  # (role, content), oldest first


class WarmTurns:
    """The turns each recent conversation's last prompt held, as sent (bounded, LRU,
    forgotten after max_age_s like the engine's caches)."""

    def __init__(self, size: int = 256, max_age_s: float = 900.0) -> None:
        self.size = size
        self.max_age_s = max_age_s
        self._turns: OrderedDict[str, tuple[Turns, float]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, conversation_id: str, turns: Turns) -> None:
        """The turns of a finished answer's prompt, its answer last."""
        with self._lock:
            self._turns[conversation_id] = (list(turns), time.monotonic())
            self._turns.move_to_end(conversation_id)
            while len(self._turns) > self.size:
                self._turns.popitem(last=False)

    def recall(self, conversation_id: str | None) -> Turns | None:
        """The conversation's turns as last sent, if still remembered."""
        if conversation_id is None:
            return None
        with self._lock:
            entry = self._turns.get(conversation_id)
            if entry is None or entry[1] < time.monotonic() - self.max_age_s:
                self._turns.pop(conversation_id, None)
                return None
            return list(entry[0])


@dataclass(frozen=True)
class ChosenPrompt:
    """The fitted prompt and the turns it holds as sent (for the next turn)."""

    fitted: FittedPrompt
    sent: Turns  # earlier turns kept, then this question's user message
    warm: bool  # whether it starts with the previous turn's prompt and answer


def choose_prompt(
    engine: ChatEngine,
    system: str,
    question: str,
    hits: list[Hit],
    history: Turns,
    warm: Turns | None,
    extra_system: str,
    max_tokens: int,
) -> ChosenPrompt:
    """The compact prompt, or the warm one where it leaves fewer tokens to evaluate
    (blocking: it tokenizes both)."""
    compact = fit_prompt(engine, system, question, hits, history, extra_system, max_tokens)
    chosen, turns, is_warm = compact, history, False
    if warm:
        candidate = fit_prompt(engine, system, question, hits, warm, extra_system, max_tokens)

        def cost(fitted: FittedPrompt) -> int:
            return fitted.prompt.n_tokens - engine.cached_tokens(fitted.prompt)

        if candidate.turns == len(warm) and cost(candidate) < cost(compact):
            chosen, turns, is_warm = candidate, warm, True
    kept = turns[len(turns) - chosen.turns :] if chosen.turns else []
    sent = user_message(strip_control_tokens(question), chosen.hits)
    return ChosenPrompt(chosen, [*kept, ("user", sent)], is_warm)
