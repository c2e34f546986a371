"""POST /api/chat: a question in, a streamed and cited answer out; history in SQL."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from app.api.deps import ComponentsDep, IdentityDep, may_read, owner_of, require_scope
from app.api.errors import ApiError
from app.components import Components
from app.llm.base import EngineBusy, EngineUnavailable, GenerationTimeout
from app.rag.pipeline import PreparedAnswer
from app.security.keys import Identity
from app.store import conversations
from app.store.models import Conversation
from app.telemetry.context import annotate

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["chat"], dependencies=[require_scope("chat")])


class ChatRequest(BaseModel):
    """A question, optionally continuing a conversation."""

    question: str = Field(min_length=1, description="The user's question.")
    conversation_id: str | None = Field(
        None, max_length=64, description="Conversation to continue."
    )
    stream: bool = Field(True, description="Stream server-sent events (default) or return JSON.")


def sse(event: str, data: dict[str, Any]) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _history(
    components: Components, conversation_id: str, identity: Identity | None
) -> tuple[list[tuple[str, str]], str]:
    """Earlier turns and the last question of an existing conversation (404 if unknown)."""
    with components.db.session() as session:
        conversation = session.get(Conversation, conversation_id)
        # Another key's conversation looks exactly like a missing one.
        if conversation is None or not may_read(identity, conversation.owner):
            raise ApiError(404, "not_found", "no such conversation")
        turns = components.settings.rag.history_turns
        history = conversations.history(session, conversation_id, turns)
        return history, conversations.last_question(session, conversation_id) or ""


def _store_turn(
    components: Components,
    conversation_id: str | None,
    question: str,
    prepared: PreparedAnswer,
    owner: str | None,
) -> tuple[str, str]:
    """Save the question and a placeholder answer; return the conversation and answer ids."""
    with components.db.session() as session:
        if conversation_id is None:
            conversation_id = conversations.create(session, question, owner).id
        conversations.add_message(session, conversation_id, "user", content=question)
        answer = conversations.add_message(
            session,
            conversation_id,
            "assistant",
            status="streaming",
            citations=[c.as_dict() for c in prepared.citations],
            answered_from_docs=prepared.answered_from_docs,
            model=components.engine.model_id,
        )
        return conversation_id, answer.id


def _finish_turn(
    components: Components, message_id: str, text: str, status: str, prepared: PreparedAnswer
) -> None:
    with components.db.session() as session:
        conversations.update_message(
            session,
            message_id,
            content=text,
            status=status,
            prompt_tokens=prepared.stats.prompt_tokens or None,
            completion_tokens=prepared.stats.completion_tokens or None,
            checks=dict(prepared.checks),
        )


@router.post("/chat", response_model=None)
async def chat(
    request: ChatRequest, components: ComponentsDep, identity: IdentityDep
) -> StreamingResponse | JSONResponse:
    """Answer a question from the documentation, with citations."""
    question = request.question.strip()
    if not question:
        raise ApiError(422, "invalid_request", "question: must not be blank")
    history: list[tuple[str, str]] = []
    previous = None
    if request.conversation_id:
        history, previous = await asyncio.to_thread(
            _history, components, request.conversation_id, identity
        )
    answerer = components.answerer
    # Prepared before any byte is sent, so a prompt that cannot fit is a clean 400.
    # A full model queue is a 429 here, not a hang later.
    prepared = await answerer.prepare(question, history, previous_question=previous)
    conversation_id, message_id = await asyncio.to_thread(
        _store_turn, components, request.conversation_id, question, prepared, owner_of(identity)
    )
    annotate(conversation_id=conversation_id)  # on this request's log line
    citations = [c.as_dict() for c in prepared.citations]

    def final(text: str) -> dict[str, Any]:
        return {
            "conversation_id": conversation_id,
            "message_id": message_id,
            "answer": text,
            "answered_from_docs": prepared.answered_from_docs,
            "citations": citations,
            "grounded": prepared.grounded,
            "grounding_score": prepared.checks.get("grounding_score"),
            "checks": dict(prepared.checks),
            "usage": {
                "prompt_tokens": prepared.stats.prompt_tokens,
                "completion_tokens": prepared.stats.completion_tokens,
            },
        }

    def outcome(pieces: list[str], status: str) -> tuple[str, str]:
        # A withheld answer is stored as the notice, never as what the model wrote.
        text = answerer.final_text(prepared, "".join(pieces))
        return text, "blocked" if prepared.blocked else status

    if not request.stream:
        pieces: list[str] = []
        status = "error"
        try:
            async for piece in answerer.stream(prepared):
                pieces.append(piece)
            status = "complete"
        finally:
            text, status = outcome(pieces, status)
            await asyncio.to_thread(_finish_turn, components, message_id, text, status, prepared)
        return JSONResponse(final(text))

    async def events() -> AsyncIterator[str]:
        pieces: list[str] = []
        status = "cancelled"  # unless the loop below finishes: the client went away
        try:
            yield sse("start", {"conversation_id": conversation_id, "message_id": message_id})
            async for piece in answerer.stream(prepared):
                pieces.append(piece)
                yield sse("token", {"text": piece})
            status = "complete"
            yield sse("done", final(outcome(pieces, status)[0]))
        except GenerationTimeout as exc:
            status = "error"
            yield sse("error", {"error": {"type": "timeout", "message": str(exc)}})
        except (EngineUnavailable, EngineBusy) as exc:
            # After the first byte the status is sent: the error travels as an event.
            status = "error"
            kind = exc.type if isinstance(exc, EngineUnavailable) else "model_busy"
            yield sse("error", {"error": {"type": kind, "message": str(exc)}})
        except Exception:
            status = "error"
            log.exception("answer failed in conversation %s", conversation_id)
            yield sse(
                "error", {"error": {"type": "internal_error", "message": "the answer failed"}}
            )
        finally:
            text, status = outcome(pieces, status)
            # Shielded: the write must happen even while this task is being cancelled.
            await asyncio.shield(
                asyncio.to_thread(_finish_turn, components, message_id, text, status, prepared)
            )

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
