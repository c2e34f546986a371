"""The chat model asked, right after answering, whether its answer is supported.

The question goes after the answer as the next user turn, so the prompt starts with
what the engine still holds (the answer's prompt and the answer: app/llm/kept.py) and
only the question's few tokens are new. The model's reply is read as P(yes) /
(P(yes) + P(no)) of its first token; below the floor (rag.self_check), the answer is
judged ungrounded. Measured on the hand labels (docs/answer-quality.md): on its own it
tells wrong answers from right ones no better than chance, but its lowest shares are
wrong answers the text checks let through ("there is no record of where the branch
pointed", "no, you cannot check out two branches at once"), with no right answer among
them, so it is kept as a low floor under the other checks.

The floor is measured per catalog model (`CatalogModel.self_check_floor`), applying only
to that very file, as the confidence floor does (app/rag/confidence.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Literal

from app.chat.events import AnswerChecks
from app.llm.base import ChatEngine, GenerationTimeout, Prompt, PromptTooLong
from app.llm.catalog import measured_floor
from common.control_tokens import strip_control_tokens

QUESTION = (
    "Check your answer against the excerpts. Is everything it says stated in the "
    "excerpts, and does it answer my question? Reply with yes or no."
)


async def self_check(
    engine: ChatEngine, prompt: Prompt, answer: str, deadline: float
) -> float | None:
    """The model's P(yes) that `answer` to `prompt` is supported; None where the engine
    cannot say (a remote server, no place free, no room left in the context, the
    deadline passed, a prompt kept without its messages)."""
    if not prompt.messages:
        return None
    messages = [
        *prompt.messages,
        {"role": "assistant", "content": strip_control_tokens(answer)},
        {"role": "user", "content": QUESTION},
    ]
    try:
        judge = await asyncio.to_thread(engine.format, messages)
        return await engine.yes_share(judge, deadline=deadline)
    except (PromptTooLong, GenerationTimeout):
        # No room left in the context, or the answer's deadline passed: the answer
        # stands on the other checks rather than fail after it was written.
        return None


def self_check_floor(
    setting: float | Literal["auto"] | None, model_sha256: str | None
) -> float | None:
    """The share of yes below which an answer is flagged (rag.self_check)."""
    return measured_floor(setting, model_sha256, "self_check_floor")


async def with_self_check(
    checks: AnswerChecks,
    setting: float | Literal["auto"] | None,
    engine: ChatEngine,
    prompt: Prompt | None,
    answer: str,
    deadline: float,
) -> AnswerChecks:
    """`checks` with the model's share of yes and its verdict, where it applies: the
    other checks passed, the model has a floor, and the prompt it answered is known."""
    floor = self_check_floor(setting, engine.model_sha256)
    if not checks.grounded or floor is None or prompt is None:
        return checks
    share = await self_check(engine, prompt, answer, deadline)
    if share is None:
        return checks
    said_no = share < floor
    return replace(
        checks,
        self_check=round(share, 4),
        grounded=not said_no,
        flagged_by=["self_check"] if said_no else None,
    )
