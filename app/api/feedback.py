"""Feedback on answers: users rate them (chat scope), the docs team reviews (admin scope)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.api.deps import (
    ComponentsDep,
    IdentityDep,
    SessionDep,
    admin_scope,
    feedback_name,
    may_see_conversation,
    require_scope,
)
from app.api.errors import ERROR_RESPONSES
from app.api.problems import ApiError
from app.api.schemas import FeedbackOut
from app.store import feedback
from app.store.feedback import COMMENT_MAX_CHARS, Rating
from app.store.models import Message


class ReviewCitation(BaseModel):
    """A source of a rated answer, as the review list shows it."""

    source: str | None
    title: str | None
    section: str | None
    score: float | None
    url: str | None


class FeedbackReviewItem(FeedbackOut):
    """A rating with the question, the answer and its sources: what to fix in the docs."""

    conversation_id: str
    question: str | None
    answer_excerpt: str
    answer_status: str
    answered_from_docs: bool | None
    grounding_score: float | None
    citations: list[ReviewCitation]


router = APIRouter(prefix="/api", tags=["feedback"], dependencies=[require_scope("chat")])
review = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=admin_scope())


class FeedbackRequest(BaseModel):
    """A rating of one answer, with an optional comment."""

    rating: Rating = Field(description='"up" (helpful) or "down" (not helpful).')
    comment: str | None = Field(
        None,
        max_length=COMMENT_MAX_CHARS,
        description="What was wrong or missing; control characters are dropped.",
    )


@router.post("/messages/{message_id}/feedback", responses=ERROR_RESPONSES)
def give_feedback(
    message_id: str,
    request: FeedbackRequest,
    session: SessionDep,
    components: ComponentsDep,
    identity: IdentityDep,
) -> FeedbackOut:
    """Rate an answer up or down; rating it again replaces this key's earlier rating."""
    message = session.get(Message, message_id)
    # Questions, unknown ids and other keys' answers all look the same: not found.
    if (
        message is None
        or message.role != "assistant"
        or not may_see_conversation(
            components, identity, message.conversation.owner, message.conversation.collection
        )
    ):
        raise ApiError(404, "not_found", "no such answer")
    comment = request.comment
    if comment is not None and components.chat.pii is not None:
        comment = components.chat.pii.redact(comment)  # privacy.redact_personal_data
    stored = feedback.give(session, message_id, feedback_name(identity), request.rating, comment)
    shown: dict[str, Any] = feedback.feedback_dict(stored)
    components.telemetry.metrics.feedback.labels(shown["rating"]).inc()
    return FeedbackOut.model_validate(shown)


@review.get("/feedback", responses=ERROR_RESPONSES)
def list_feedback(
    session: SessionDep,
    rating: Annotated[Rating | None, Query(description="Only up or only down.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="How many, newest first.")] = 50,
) -> list[FeedbackReviewItem]:
    """Recent feedback with the question, the answer and its sources: what to fix in the docs."""
    return [
        FeedbackReviewItem.model_validate(item) for item in feedback.recent(session, rating, limit)
    ]
