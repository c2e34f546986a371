"""What a reviewer looks at: rated answers with the question, the whole answer, the
passages it cited, the rating and comment, and the example made of it, if any."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.curation import passages
from app.store.feedback import RATING_NAMES, RATINGS
from app.store.models import CuratedExample, Feedback, Message


def rated(
    session: Session,
    *,
    rating: Literal["up", "down"] | None = None,
    pending: bool = False,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Rated answers, newest rating first; `pending`: only those not curated yet."""
    query = (
        select(Feedback, Message, CuratedExample)
        .join(Message, Feedback.message_id == Message.id)
        .outerjoin(CuratedExample, CuratedExample.message_id == Message.id)
        .order_by(Feedback.created_at.desc(), Feedback.id.desc())
        .limit(limit)
    )
    if rating is not None:
        query = query.where(Feedback.rating == RATINGS[rating])
    if pending:
        query = query.where(CuratedExample.id.is_(None))
    items = []
    for feedback, message, example in session.execute(query):
        question = session.scalar(
            select(Message.content)
            .where(
                Message.conversation_id == message.conversation_id,
                Message.role == "user",
                Message.seq < message.seq,
            )
            .order_by(Message.seq.desc())
            .limit(1)
        )
        items.append(
            {
                "feedback_id": feedback.id,
                "message_id": message.id,
                "rating": RATING_NAMES[feedback.rating],
                "comment": feedback.comment,
                "given_by": feedback.given_by or None,
                "rated_at": feedback.created_at.isoformat(),
                "question": question,
                "answer": message.content,
                "answer_status": message.status,
                "finish_reason": message.finish_reason,
                "passages": passages.from_citations(session, list(message.citations or [])),
                "example_id": example.id if example else None,
                "example_status": example.status if example else None,
            }
        )
    return items
