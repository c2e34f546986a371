"""What the chat service is asked: a question, what it continues, and who asks."""

from __future__ import annotations

from dataclasses import dataclass

from app.chat.errors import QuestionTooLong, RequestTooLarge
from app.security.keys import Identity
from app.settings import RagSettings


@dataclass(frozen=True)
class Question:
    """A question and what it continues."""

    text: str
    # A stored conversation to continue (its history is read from the database) ...
    conversation_id: str | None = None
    # ... or the earlier turns the caller holds itself (OpenAI clients), oldest first.
    history: tuple[tuple[str, str], ...] = ()
    extra_system: str = ""  # the caller's own system instructions, appended
    max_tokens: int | None = None
    temperature: float | None = None
    store: bool = True  # keep the question and answer as a conversation
    caller: Identity | None = None  # None: authentication is off
    # The collection to answer from (None: the conversation's, else the default); the
    # caller must be one of its readers (app/access/policy.py).
    collection: str | None = None


def check_size(rag: RagSettings, question: Question, text: str) -> None:
    """Refuse a question, or a request of turns, past the configured bounds."""
    if len(text) > rag.max_question_chars:
        raise QuestionTooLong(rag.max_question_chars)
    messages = len(question.history) + 1 + (1 if question.extra_system else 0)
    if messages > rag.max_messages:
        raise RequestTooLarge(f"messages: {messages} is more than the {rag.max_messages} accepted")
    chars = len(text) + len(question.extra_system) + sum(len(c) for _, c in question.history)
    if chars > rag.max_request_chars:
        raise RequestTooLarge(
            f"messages: {chars} characters in all is more than the {rag.max_request_chars} accepted"
        )
