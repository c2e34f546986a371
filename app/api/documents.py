"""Views of stored documents and conversations, for citations and reloads, and the
deletion of one's own conversation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import (
    IdentityDep,
    SessionDep,
    SettingsDep,
    actor_of,
    feedback_name,
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
    created_at: str
    feedback: FeedbackOut | None = Field(description="The caller's own rating of it.")


class ConversationOut(BaseModel):
    """A conversation with its messages, oldest first."""

    id: str
    title: str
    created_at: str
    messages: list[MessageOut]


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
    document_id: str, session: SessionDep, settings: SettingsDep, identity: IdentityDep
) -> DocumentOut:
    """A document's chunks in order: what a citation links to."""
    doc = session.get(Document, document_id)
    # A chat key reads the collection the server answers from, as its answers do;
    # other collections in the same store (ingested with --collection) are an admin's
    # to read. One that is hidden looks exactly like a missing one.
    admin = identity is None or identity.allows("admin")
    if doc is None or (not admin and doc.collection != settings.vectors.collection):
        raise ApiError(404, "not_found", "no such document")
    return DocumentOut(
        id=doc.id,
        collection=doc.collection,
        source=doc.source,
        title=doc.title,
        updated_at=doc.updated_at.isoformat(),
        chunks=[ChunkOut(ord=c.ord, section=c.section, text=c.text) for c in doc.chunks],
    )


@router.get("/conversations/{conversation_id}", responses=ERROR_RESPONSES)
def get_conversation(
    conversation_id: str, session: SessionDep, identity: IdentityDep
) -> ConversationOut:
    """A conversation's messages, so the chat page survives a reload."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or not may_read(identity, conversation.owner):
        raise ApiError(404, "not_found", "no such conversation")
    messages = conversation.messages
    # The caller's own ratings: what the page shows as chosen.
    mine = feedback.given_by(
        session, [m.id for m in messages if m.role == "assistant"], feedback_name(identity)
    )
    return ConversationOut.model_validate(
        {
            "id": conversation.id,
            "title": conversation.title,
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
    the ratings of its answers. Another key's conversation answers 404, like a missing one."""
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
