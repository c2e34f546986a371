"""What the chat service is asked: a question, what it continues, and who asks."""

from __future__ import annotations

from dataclasses import dataclass

from app.security.keys import Identity


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
