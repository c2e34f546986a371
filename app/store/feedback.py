"""Users' feedback on answers: one rating per answer and API key, in the SQL database."""

from __future__ import annotations

import re
from typing import Any, Literal

from sqlalchemy import Select, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from app.store.models import Feedback, Message, utcnow

Rating = Literal["up", "down"]
RATINGS: dict[str, int] = {"up": 1, "down": -1}
RATING_NAMES: dict[int, Rating] = {1: "up", -1: "down"}
COMMENT_MAX_CHARS = 1000
EXCERPT_CHARS = 300
# C0/C1 controls (NUL included: PostgreSQL text cannot hold it) but tab and newline,
# lone surrogates (not encodable as UTF-8), and the bidi overrides that make a comment
# read differently from what it holds in the review list.
_UNWANTED = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def clean_comment(text: str | None) -> str | None:
    """The comment as stored: control characters dropped, trimmed, bounded; None if empty."""
    if text is None:
        return None
    cleaned = _UNWANTED.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    return cleaned[:COMMENT_MAX_CHARS] or None


def give(
    session: Session, message_id: str, given_by: str, rating: Rating, comment: str | None
) -> Feedback:
    """Store a rating of an answer, replacing the one this key gave it before."""
    values = {
        "message_id": message_id,
        "given_by": given_by,
        "rating": RATINGS[rating],
        "comment": clean_comment(comment),
        "created_at": utcnow(),
    }
    changed = {k: values[k] for k in ("rating", "comment", "created_at")}
    # One statement, so two requests at once cannot both insert (or lose the latest).
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        session.execute(
            insert(Feedback)
            .values(**values)
            .on_conflict_do_update(index_elements=["message_id", "given_by"], set_=changed)
        )
    else:  # other databases: read, then write
        found = session.scalar(_of(message_id, given_by))
        if found is None:
            session.add(Feedback(**values))
        else:
            for name, value in changed.items():
                setattr(found, name, value)
        session.flush()
    stored = session.scalar(_of(message_id, given_by).execution_options(populate_existing=True))
    assert stored is not None
    return stored


def _of(message_id: str, given_by: str) -> Select[Feedback]:
    return select(Feedback).where(Feedback.message_id == message_id, Feedback.given_by == given_by)


def given_by(session: Session, message_ids: list[str], key_name: str) -> dict[str, Feedback]:
    """The feedback one key gave on each of these messages, by message id."""
    if not message_ids:
        return {}
    rows = session.scalars(
        select(Feedback).where(Feedback.message_id.in_(message_ids), Feedback.given_by == key_name)
    )
    return {f.message_id: f for f in rows}


def feedback_dict(feedback: Feedback) -> dict[str, Any]:
    """Feedback as the API shows it."""
    return {
        "message_id": feedback.message_id,
        "rating": RATING_NAMES[feedback.rating],
        "comment": feedback.comment,
        "given_by": feedback.given_by or None,
        "created_at": feedback.created_at.isoformat(),
    }


def recent(session: Session, rating: Rating | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The latest feedback, newest first, with the question, the answer and its sources."""
    answer = aliased(Message)
    question = (
        select(Message.content)
        .where(
            Message.conversation_id == answer.conversation_id,
            Message.role == "user",
            Message.seq < answer.seq,
        )
        .order_by(Message.seq.desc())
        .limit(1)
        .correlate(answer)
        .scalar_subquery()
    )
    query = (
        select(Feedback, answer, question)
        .join(answer, Feedback.message_id == answer.id)
        .order_by(Feedback.created_at.desc(), Feedback.id.desc())
        .limit(limit)
    )
    if rating is not None:
        query = query.where(Feedback.rating == RATINGS[rating])
    items = []
    for feedback, message, asked in session.execute(query):
        content = message.content or ""
        items.append(
            {
                **feedback_dict(feedback),
                "conversation_id": message.conversation_id,
                "question": asked,
                "answer_excerpt": content[:EXCERPT_CHARS]
                + ("…" if len(content) > EXCERPT_CHARS else ""),
                "answer_status": message.status,
                "answered_from_docs": message.answered_from_docs,
                "grounding_score": (message.checks or {}).get("grounding_score"),
                "citations": [
                    {k: c.get(k) for k in ("source", "title", "section", "score", "url")}
                    for c in message.citations or []
                ],
            }
        )
    return items
