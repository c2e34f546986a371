"""What the chat service tells its callers: typed events and the answer's checks.

The routes only frame these (server-sent events, JSON, OpenAI chunks); nothing here
knows HTTP: a failure is a domain error, which the routes map to what a client sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.llm.base import GenerationStats
from app.rag.retrieval import Citation
from common.errors import DocchatError

# The checks that measure the model's own doubt, not the passages' support.
UNSURE = frozenset({"confidence", "self_check"})


@dataclass(frozen=True)
class AnswerChecks:
    """The checks an answer went through, stored with it."""

    retrieval_score: float | None = None
    grounding_score: float | None = None
    grounded: bool | None = None
    # Terms the answer names that its passages do not hold with what it says of them.
    unsupported_terms: list[str] | None = None
    blocked: str | None = None  # why the output guard withheld it
    # What an ungrounded answer was replaced with: "passage" (the closest passage, word
    # for word) or "notice" (that the docs do not cover it); None: shown as written.
    replaced_by: str | None = None
    # Each answer sentence with the passage sentence that supports it best
    # (app/rag/support.py; rag.sentence_support): sentence, source, passage_sentence,
    # score, supported. Only for an answer shown as written.
    support: list[dict[str, Any]] | None = None
    # The model's own confidence in what it wrote (app/rag/confidence.py): the geometric
    # mean of its tokens' probabilities; None when the engine does not report them.
    confidence: float | None = None
    # The model's share of "yes" when asked whether its answer is supported
    # (app/chat/self_check.py); None when not asked.
    self_check: float | None = None
    # The checks an ungrounded answer failed, so that what replaces it or warns of it
    # says why: "grounding" (score below rag.grounding_threshold), "terms" (a term not
    # in the passages), "restates" (only the question's words, yes or no apart),
    # "confidence" (below the model's floor), "self_check" (the model said no). None:
    # grounded, or not checked.
    flagged_by: list[str] | None = None

    @property
    def unsure_only(self) -> bool:
        """Flagged only by the model's own doubt: the passages may say it plainly."""
        return bool(self.flagged_by) and set(self.flagged_by or ()) <= UNSURE

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
class Release:
    """The model (and adapter) that wrote an answer, named for the client (lineage)."""

    model: str  # the name it is served under ("base+adapter" when an adapter is applied)
    model_sha256: str | None = None  # None: a model on a server, not a file of ours
    adapter_sha256: str | None = None  # None: no adapter applied

    @property
    def fingerprint(self) -> str | None:
        """OpenAI's `system_fingerprint`: the files' short hashes (None: not ours to hash)."""
        if self.model_sha256 is None:
            return None
        tail = f"-{self.adapter_sha256[:12]}" if self.adapter_sha256 else ""
        return f"fp_{self.model_sha256[:12]}{tail}"

    def as_dict(self) -> dict[str, Any]:
        """As the chat API shows it: names and short hashes (the full ones are stored)."""
        return {
            "model": self.model,
            "model_sha256": self.model_sha256[:12] if self.model_sha256 else None,
            "adapter_sha256": self.adapter_sha256[:12] if self.adapter_sha256 else None,
        }


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
    release: Release  # the model (and adapter) that wrote it
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
    """The answer failed after it was admitted (the response may be under way): why,
    as a domain error (InternalError for an unexpected one, which is logged)."""

    error: DocchatError


AnswerEvent = Token | Finished | Failed
