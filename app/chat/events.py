"""What the chat service tells its callers: typed events and the answer's checks.

The routes only frame these (server-sent events, JSON, OpenAI chunks); nothing here
knows HTTP beyond the status a problem carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.llm.base import GenerationStats
from app.problems import Problem
from app.rag.retrieval import Citation


@dataclass(frozen=True)
class AnswerChecks:
    """The checks an answer went through, stored with it."""

    retrieval_score: float | None = None
    grounding_score: float | None = None
    grounded: bool | None = None
    blocked: str | None = None  # why the output guard withheld it
    # What an ungrounded answer was replaced with: "passage" (the closest passage, word
    # for word) or "notice" (that the docs do not cover it); None: shown as written.
    replaced_by: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The checks that ran, as stored and shown (absent ones left out)."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Usage:
    """Tokens one answer cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt and completion together."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Started:
    """The answer was admitted; its stored ids (None when it is not stored)."""

    conversation_id: str | None
    message_id: str | None
    citations: list[Citation] = field(default_factory=list)


@dataclass(frozen=True)
class Token:
    """A piece of the answer's text, as it may be shown."""

    text: str


@dataclass(frozen=True)
class Finished:
    """The answer is complete and stored."""

    text: str  # what the user is finally given: the answer, or a notice in its place
    notice: str | None  # the notice that replaced what was streamed, if one did
    citations: list[Citation]
    answered_from_docs: bool
    checks: AnswerChecks
    usage: Usage
    finish_reason: str  # stop | length | content_filter
    model: str
    model_sha256: str | None = None  # lineage: the file that wrote it (None: a server)
    conversation_id: str | None = None
    message_id: str | None = None
    stats: GenerationStats | None = None  # the generation's timings (None: no model call)

    @property
    def verdict(self) -> str:
        """One word for the metrics: grounded, ungrounded, no_context, blocked, unchecked."""
        if self.checks.blocked:
            return "blocked"
        if not self.answered_from_docs:
            return "no_context"
        if self.checks.grounded is None:
            return "unchecked"
        return "grounded" if self.checks.grounded else "ungrounded"


@dataclass(frozen=True)
class Failed:
    """The answer failed after it was admitted (the response may be under way)."""

    problem: Problem


AnswerEvent = Token | Finished | Failed
