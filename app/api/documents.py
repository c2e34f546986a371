"""Views of stored documents and conversations, for citations and reloads, and the
deletion of one's own conversation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from app.api.deps import (
    ComponentsDep,
    IdentityDep,
    SessionDep,
    actor_of,
    feedback_name,
    may_see_conversation,
    require_scope,
)
from app.api.errors import ERROR_RESPONSES
from app.api.problems import ApiError
from app.api.schemas import CitationOut, DeletedOut, FeedbackOut
from app.security.keys import may_read
from app.store import audit, feedback, retention
from app.store.conversations import message_dict
from app.store.models import Conversation, Document


class MessageOut(BaseModel):
    """A question or an answer of a conversation."""

    id: str
    role: str = Field(description='"user" or "assistant".')
    content: str
    status: str = Field(description="complete, streaming, cancelled, blocked or error.")
    citations: list[CitationOut]
    answered_from_docs: bool | None
    checks: dict[str, Any]
    finish_reason: str | None = Field(
        None,
        description="Why the model stopped writing an answer: stop, length (it reached "
        "its length limit), repetition (stopped in a loop) or content_filter; null for a "
        "question, an answer that never finished, or one stored before docchat kept it.",
    )
    created_at: str
    feedback: FeedbackOut | None = Field(description="The caller's own rating of it.")


class ConversationOut(BaseModel):
    """A conversation with its messages, oldest first."""

    id: str
    title: str
    collection: str
    created_at: str
    messages: list[MessageOut]


class ConversationSummary(BaseModel):
    """One of the caller's conversations, as the page lists them."""

    id: str
    title: str
    collection: str
    created_at: str

    @classmethod
    def of(cls, conversation: Conversation, default: str) -> ConversationSummary:
        """A conversation's summary; one from before collections had readers answers
        from the default collection."""
        return cls(
            id=conversation.id,
            title=conversation.title,
            collection=conversation.collection or default,
            created_at=conversation.created_at.isoformat(),
        )


class Rename(BaseModel):
    """A conversation's new title."""

    title: str = Field(min_length=1, max_length=200)


class ChunkOut(BaseModel):
    """One chunk of a document, in reading order."""

    ord: int
    section: str
    text: str


class DocumentOut(BaseModel):
    """A stored document: what a citation links to."""

    id: str
    collection: str
    source: str
    title: str
    updated_at: str
    chunks: list[ChunkOut]


router = APIRouter(prefix="/api", tags=["documents"], dependencies=[require_scope("chat")])


@router.get("/documents/{document_id}", responses=ERROR_RESPONSES)
def get_document(
    document_id: str, session: SessionDep, components: ComponentsDep, identity: IdentityDep
) -> DocumentOut:
    """A document's chunks in order: what a citation links to."""
    doc = session.get(Document, document_id)
    # Only a reader of its collection sees it; a hidden one looks exactly like a
    # missing one.
    if doc is None or not components.access.may_read(identity, doc.collection):
        raise ApiError(404, "not_found", "no such document")
    return DocumentOut(
        id=doc.id,
        collection=doc.collection,
        source=doc.source,
        title=doc.title,
        updated_at=doc.updated_at.isoformat(),
        chunks=[ChunkOut(ord=c.ord, section=c.section, text=c.text) for c in doc.chunks],
    )


def _readable(
    session: SessionDep, components: ComponentsDep, identity: IdentityDep, conversation_id: str
) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or not may_see_conversation(
        components, identity, conversation.owner, conversation.collection
    ):
        raise ApiError(404, "not_found", "no such conversation")
    return conversation


@router.get("/conversations", responses=ERROR_RESPONSES)
def list_conversations(
    session: SessionDep,
    components: ComponentsDep,
    identity: IdentityDep,
    limit: Annotated[int, Query(ge=1, le=200, description="How many, newest first.")] = 50,
) -> list[ConversationSummary]:
    """The caller's own conversations (with authentication off: those nobody owns), in
    the collections they may still read, newest first."""
    default = components.settings.vectors.collection
    readable = {c.name for c in components.access.readable(identity)}
    owner = identity.owner if identity is not None else None
    # Filtered before the limit: conversations of collections no longer readable do not
    # take the places of readable ones.
    rows = session.scalars(
        select(Conversation)
        .where(Conversation.owner.is_(None) if owner is None else Conversation.owner == owner)
        .where(func.coalesce(Conversation.collection, default).in_(readable))
        .order_by(Conversation.created_at.desc())
        .limit(limit)
    )
    return [ConversationSummary.of(c, default) for c in rows]


@router.patch("/conversations/{conversation_id}", responses=ERROR_RESPONSES)
def rename_conversation(
    conversation_id: str,
    body: Rename,
    session: SessionDep,
    components: ComponentsDep,
    identity: IdentityDep,
) -> ConversationSummary:
    """Give one's conversation another title."""
    conversation = _readable(session, components, identity, conversation_id)
    conversation.title = " ".join(body.title.split())[:200] or conversation.title
    return ConversationSummary.of(conversation, components.settings.vectors.collection)


@router.get("/conversations/{conversation_id}", responses=ERROR_RESPONSES)
def get_conversation(
    conversation_id: str, session: SessionDep, components: ComponentsDep, identity: IdentityDep
) -> ConversationOut:
    """A conversation's messages, so the chat page survives a reload."""
    conversation = _readable(session, components, identity, conversation_id)
    messages = conversation.messages
    # The caller's own ratings: what the page shows as chosen.
    mine = feedback.given_by(
        session, [m.id for m in messages if m.role == "assistant"], feedback_name(identity)
    )
    return ConversationOut.model_validate(
        {
            "id": conversation.id,
            "title": conversation.title,
            "collection": conversation.collection or components.settings.vectors.collection,
            "created_at": conversation.created_at.isoformat(),
            "messages": [
                message_dict(m, feedback.feedback_dict(mine[m.id]) if m.id in mine else None)
                for m in messages
            ],
        }
    )


@router.delete("/conversations/{conversation_id}", responses=ERROR_RESPONSES)
def delete_conversation(
    conversation_id: str, session: SessionDep, identity: IdentityDep
) -> DeletedOut:
    """Delete a conversation the caller started (an admin: any), with its messages and
    the ratings of its answers, even one of a collection they no longer read. Another
    key's conversation answers 404, like a missing one."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or not may_read(identity, conversation.owner):
        raise ApiError(404, "not_found", "no such conversation")
    counts = retention.delete_conversations(session, [conversation_id])
    audit.record(
        session,
        actor_of(identity),
        "conversation.delete",
        conversation_id,
        detail=counts.as_dict(),
    )
    return DeletedOut(**counts.as_dict())
