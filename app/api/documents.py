"""Read-only views of stored documents and conversations, for citations and reloads."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from app.api.deps import ComponentsDep, IdentityDep, feedback_name, may_read, require_scope
from app.components import Components
from app.problems import ApiError
from app.security.keys import Identity
from app.store import feedback
from app.store.conversations import message_dict
from app.store.models import Conversation, Document

router = APIRouter(prefix="/api", tags=["documents"], dependencies=[require_scope("chat")])


def _document(
    components: Components, document_id: str, identity: Identity | None
) -> dict[str, Any] | None:
    with components.db.session() as session:
        doc = session.get(Document, document_id)
        if doc is None:
            return None
        # A chat key reads the collection the server answers from, as its answers do;
        # other collections in the same store (ingested with --collection) are an
        # admin's to read. One that is hidden looks exactly like a missing one.
        serving = components.settings.vectors.collection
        if identity is not None and not identity.allows("admin") and doc.collection != serving:
            return None
        return {
            "id": doc.id,
            "collection": doc.collection,
            "source": doc.source,
            "title": doc.title,
            "updated_at": doc.updated_at.isoformat(),
            "chunks": [{"ord": c.ord, "section": c.section, "text": c.text} for c in doc.chunks],
        }


def _conversation(
    components: Components, conversation_id: str, identity: Identity | None
) -> dict[str, Any] | None:
    with components.db.session() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None or not may_read(identity, conversation.owner):
            return None
        messages = conversation.messages
        # The caller's own ratings: what the page shows as chosen.
        mine = feedback.given_by(
            session,
            [m.id for m in messages if m.role == "assistant"],
            feedback_name(identity),
        )
        return {
            "id": conversation.id,
            "title": conversation.title,
            "created_at": conversation.created_at.isoformat(),
            "messages": [
                message_dict(m, feedback.feedback_dict(mine[m.id]) if m.id in mine else None)
                for m in messages
            ],
        }


@router.get("/documents/{document_id}")
async def get_document(
    document_id: str, components: ComponentsDep, identity: IdentityDep
) -> dict[str, Any]:
    """A document's chunks in order: what a citation links to."""
    found = await asyncio.to_thread(_document, components, document_id, identity)
    if found is None:
        raise ApiError(404, "not_found", "no such document")
    return found


@router.get("/conversations/{conversation_id}")
async def get_conversation(
    conversation_id: str, components: ComponentsDep, identity: IdentityDep
) -> dict[str, Any]:
    """A conversation's messages, so the chat page survives a reload."""
    found = await asyncio.to_thread(_conversation, components, conversation_id, identity)
    if found is None:
        raise ApiError(404, "not_found", "no such conversation")
    return found
