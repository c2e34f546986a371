"""What the chat service keeps of a conversation: the question and a placeholder
answer before the answer starts, the answer's outcome however it ends, and the earlier
turns a follow-up continues. Personal data is replaced in what is written when
privacy.redact_personal_data is on; what the user reads is the answer as written."""

from __future__ import annotations

from typing import NamedTuple

from app.chat.errors import ConversationNotFound
from app.chat.events import AnswerChecks, Release, Usage
from app.rag.retrieval import citations
from app.security.keys import Identity, may_read
from app.security.pii import PiiRedactor
from app.store import conversations
from app.store.db import Database
from app.store.models import Conversation
from app.store.vectors import Hit


class Earlier(NamedTuple):
    """What a stored conversation gives the question that continues it."""

    history: list[tuple[str, str]]  # earlier turns, oldest first
    previous: str  # the last question
    collection: str | None  # the collection it answers from (None: the default)


class ChatRecords:
    """Conversations and their messages, as the chat service reads and writes them."""

    def __init__(self, db: Database, pii: PiiRedactor | None = None) -> None:
        self.db = db
        self.pii = pii

    def history(self, conversation_id: str, caller: Identity | None, turns: int) -> Earlier:
        """Earlier turns (at most `turns`), the last question and the collection of a
        conversation the caller may read."""
        with self.db.session() as session:
            conversation = session.get(Conversation, conversation_id)
            # Another key's conversation looks exactly like a missing one.
            if conversation is None or not may_read(caller, conversation.owner):
                raise ConversationNotFound
            return Earlier(
                conversations.history(session, conversation_id, turns),
                conversations.last_question(session, conversation_id) or "",
                conversation.collection,
            )

    def stored(self, text: str) -> str:
        """Text as it is written to the database: with personal data replaced when the
        redaction is on."""
        return self.pii.redact(text) if self.pii is not None else text

    def store_question(
        self,
        conversation_id: str | None,
        owner: str | None,
        text: str,
        hits: list[Hit],
        release: Release,
        collection: str | None = None,
    ) -> tuple[str, str]:
        """Save the question (in a new conversation of `collection`, unless one is
        given) and a placeholder answer; the conversation and answer ids."""
        text = self.stored(text)
        with self.db.session() as session:
            if conversation_id is None:
                conversation_id = conversations.create(session, text, owner, collection).id
            conversations.add_message(session, conversation_id, "user", content=text)
            answer = conversations.add_message(
                session,
                conversation_id,
                "assistant",
                status="streaming",
                citations=[c.as_dict() for c in citations(hits)],
                answered_from_docs=bool(hits),
                model=release.model,
                model_sha256=release.model_sha256,
                adapter_sha256=release.adapter_sha256,
            )
            return conversation_id, answer.id

    def store_outcome(
        self,
        message_id: str,
        text: str,
        status: str,
        usage: Usage,
        checks: AnswerChecks,
        seconds: float | None = None,
        finish_reason: str | None = None,
    ) -> None:
        """The answer as it ended, its cost, its checks and why the model stopped (None
        where it never finished)."""
        # The answer's time rides with its checks (the anomaly monitors' latency signal,
        # app/telemetry/observations.py, reads it back from the database).
        with self.db.session() as session:
            conversations.update_message(
                session,
                message_id,
                content=self.stored(text),
                status=status,
                prompt_tokens=usage.prompt_tokens or None,
                completion_tokens=usage.completion_tokens or None,
                finish_reason=finish_reason,
                checks=checks.as_dict()
                | ({} if seconds is None else {"seconds": round(seconds, 3)}),
            )
