"""Feedback on answers: users rate them (chat scope), the docs team reviews (admin scope)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.api.deps import ComponentsDep, IdentityDep, feedback_name, may_read, require_scope
from app.components import Components
from app.problems import ApiError
from app.security.keys import Identity
from app.store import feedback
from app.store.feedback import COMMENT_MAX_CHARS, Rating
from app.store.models import Message

router = APIRouter(prefix="/api", tags=["feedback"], dependencies=[require_scope("chat")])
review = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[require_scope("admin")])


class FeedbackRequest(BaseModel):
    """A rating of one answer, with an optional comment."""

    rating: Rating = Field(description='"up" (helpful) or "down" (not helpful).')
    comment: str | None = Field(
        None,
        max_length=COMMENT_MAX_CHARS,
        description="What was wrong or missing; control characters are dropped.",
    )


def _give(
    components: Components, message_id: str, identity: Identity | None, request: FeedbackRequest
) -> dict[str, Any]:
    with components.db.session() as session:
        message = session.get(Message, message_id)
        # Questions, unknown ids and other keys' answers all look the same: not found.
        if (
            message is None
            or message.role != "assistant"
            or not may_read(identity, message.conversation.owner)
        ):
            raise ApiError(404, "not_found", "no such answer")
        stored = feedback.give(
            session, message_id, feedback_name(identity), request.rating, request.comment
        )
        return feedback.feedback_dict(stored)


@router.post("/messages/{message_id}/feedback")
async def give_feedback(
    message_id: str, request: FeedbackRequest, components: ComponentsDep, identity: IdentityDep
) -> dict[str, Any]:
    """Rate an answer up or down; rating it again replaces this key's earlier rating."""
    stored = await asyncio.to_thread(_give, components, message_id, identity, request)
    components.telemetry.metrics.feedback.labels(stored["rating"]).inc()
    return stored


def _recent(components: Components, rating: Rating | None, limit: int) -> list[dict[str, Any]]:
    with components.db.session() as session:
        return feedback.recent(session, rating, limit)


@review.get("/feedback")
async def list_feedback(
    components: ComponentsDep,
    rating: Annotated[Rating | None, Query(description="Only up or only down.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="How many, newest first.")] = 50,
) -> list[dict[str, Any]]:
    """Recent feedback with the question, the answer and its sources: what to fix in the docs."""
    return await asyncio.to_thread(_recent, components, rating, limit)
