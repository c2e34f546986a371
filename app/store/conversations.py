"""Conversations and their messages in the SQL database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.store.models import Conversation, Message


def storable(text: str) -> str:
    """The text without NUL characters, which PostgreSQL text cannot hold.

    A NUL means nothing in a question or an answer; dropping it on every backend keeps
    SQLite and PostgreSQL storing the same thing (instead of a 500 on PostgreSQL only).
    """
    return text.replace("\x00", "")


def create(
    session: Session, title: str, owner: str | None = None, collection: str | None = None
) -> Conversation:
    """A new, empty conversation titled by its first question, in `collection`."""
    conversation = Conversation(title=storable(title)[:200], owner=owner, collection=collection)
    session.add(conversation)
    session.flush()
    return conversation


def history(session: Session, conversation_id: str, turns: int) -> list[tuple[str, str]]:
    """The last `turns` complete question/answer pairs, oldest first."""
    if turns <= 0:
        return []
    rows = session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.seq.desc())
        .limit(turns * 2 + 2)
    ).all()
    pairs: list[tuple[str, str]] = []
    answer: Message | None = None
    for message in rows:  # newest first
        if message.role == "assistant":
            answer = message if message.status == "complete" and message.content else None
        elif answer is not None:
            pairs[0:0] = [("user", message.content), ("assistant", answer.content)]
            answer = None
        if len(pairs) >= turns * 2:
            break
    return pairs


def last_question(session: Session, conversation_id: str) -> str | None:
    """The most recent question asked in the conversation."""
    return session.scalar(
        select(Message.content)
        .where(Message.conversation_id == conversation_id, Message.role == "user")
        .order_by(Message.seq.desc())
        .limit(1)
    )


def add_message(session: Session, conversation_id: str, role: str, **fields: Any) -> Message:
    """Append a message at the end of the conversation."""
    # Two requests adding to one conversation at once must not both read the same
    # max(seq). A no-op UPDATE first locks the conversation's row on PostgreSQL and takes
    # the database's write lock on SQLite (a SELECT takes neither), so they take turns.
    session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(id=Conversation.id)
        .execution_options(synchronize_session=False)
    )
    if "content" in fields:
        fields["content"] = storable(fields["content"])
    seq = session.scalar(
        select(func.coalesce(func.max(Message.seq), 0)).where(
            Message.conversation_id == conversation_id
        )
    )
    message = Message(conversation_id=conversation_id, role=role, seq=(seq or 0) + 1, **fields)
    session.add(message)
    session.flush()
    return message


def update_message(session: Session, message_id: str, **fields: Any) -> None:
    """Set fields of a stored message (the answer once it is final); nothing when it
    was deleted meanwhile (its conversation deleted while the answer ran)."""
    message = session.get(Message, message_id)
    if message is None:
        return
    if "content" in fields:
        fields["content"] = storable(fields["content"])
    for name, value in fields.items():
        setattr(message, name, value)


def message_dict(message: Message, feedback: dict[str, Any] | None = None) -> dict[str, Any]:
    """A message as the API shows it, with the caller's feedback on it (None if none)."""
    return {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "citations": message.citations or [],
        "answered_from_docs": message.answered_from_docs,
        "checks": message.checks or {},
        "finish_reason": message.finish_reason,
        "created_at": message.created_at.isoformat(),
        "feedback": feedback,
    }
