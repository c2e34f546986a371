"""POST /api/chat: a question in, a streamed and cited answer out; history in SQL.

The chat service does the work; this route frames its events as server-sent events or
one JSON object.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, StrictBool

from app.api.deps import ChatDep, IdentityDep, require_scope
from app.api.errors import ERROR_RESPONSES
from app.api.problems import problem_of
from app.api.schemas import CitationOut
from app.api.streaming import admitted, finished, sse
from app.chat.events import Finished, Token
from app.chat.question import Question
from app.chat.service import Answer
from app.telemetry.context import annotate


class UsageOut(BaseModel):
    """Tokens the answer cost."""

    prompt_tokens: int
    completion_tokens: int


class ReleaseOut(BaseModel):
    """The model (and adapter) that wrote an answer."""

    model: str = Field(description='The name it is served under ("base+adapter" with one).')
    model_sha256: str | None = Field(
        description="The model file's sha256, first 12 hex digits (null: a model server's)."
    )
    adapter_sha256: str | None = Field(
        description="The adapter file's sha256, first 12 hex digits (null: none applied)."
    )


class ChatAnswer(BaseModel):
    """A finished answer (the JSON response, and the data of the `done` event)."""

    conversation_id: str
    message_id: str
    answer: str
    answered_from_docs: bool
    citations: list[CitationOut]
    grounded: bool | None
    grounding_score: float | None
    checks: dict[str, Any] = Field(
        description="The checks the answer went through: retrieval_score, "
        "grounding_score, grounded, and blocked (why it was withheld)."
    )
    usage: UsageOut
    release: ReleaseOut
    finish_reason: str = Field(
        description="How the model's text ended: stop (complete), length (cut at "
        "llm.answer_tokens), repetition (stopped in a loop, llm.stop_repeats) or "
        "content_filter (withheld). With checks.replaced_by, a notice or passage was "
        "shown in its place."
    )


router = APIRouter(prefix="/api", tags=["chat"], dependencies=[require_scope("chat")])


class ChatRequest(BaseModel):
    """A question, optionally continuing a conversation."""

    question: str = Field(min_length=1, description="The user's question.")
    conversation_id: str | None = Field(
        None, max_length=64, description="Conversation to continue."
    )
    stream: StrictBool = Field(
        True, description="Stream server-sent events (default) or return JSON."
    )
    collection: str | None = Field(
        None,
        max_length=63,
        description="The collection to answer from (GET /api/collections lists those the "
        "caller may read); default: the conversation's, else the server's default.",
    )


def answer_body(done: Finished) -> dict[str, Any]:
    """A finished answer in the ChatAnswer shape."""
    return {
        "conversation_id": done.conversation_id,
        "message_id": done.message_id,
        "answer": done.text,
        "answered_from_docs": done.answered_from_docs,
        "citations": [c.as_dict() for c in done.citations],
        "grounded": done.checks.grounded,
        "grounding_score": done.checks.grounding_score,
        "checks": done.checks.as_dict(),
        "usage": {
            "prompt_tokens": done.usage.prompt_tokens,
            "completion_tokens": done.usage.completion_tokens,
        },
        "release": done.release.as_dict(),
        "finish_reason": done.finish_reason,
    }


SSE_DOC = (
    "With `stream` (the default): server-sent events `start` (conversation_id, "
    "message_id), `token` (text), then `done` (a ChatAnswer) or `error` ({error: {type, "
    "message}})."
)


@router.post(
    "/chat",
    response_model=ChatAnswer,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        **ERROR_RESPONSES,
    },
    description=f"Answer a question from the documentation, with citations. {SSE_DOC}",
)
async def chat(
    body: ChatRequest, chat: ChatDep, identity: IdentityDep, request: Request
) -> Response:
    """Answer a question from the documentation, with citations."""
    question = Question(
        body.question,
        conversation_id=body.conversation_id,
        caller=identity,
        collection=body.collection,
    )
    answer = await admitted(request, chat, question)
    annotate(conversation_id=answer.started.conversation_id)  # on this request's log line
    if not body.stream:
        done = await finished(request, answer)
        return Response(
            ChatAnswer.model_validate(answer_body(done)).model_dump_json(),
            media_type="application/json",
        )
    return StreamingResponse(
        events(answer),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def events(answer: Answer) -> AsyncIterator[str]:
    """The answer as server-sent events; closing it (the client left) cancels it."""
    ids = {
        "conversation_id": answer.started.conversation_id,
        "message_id": answer.started.message_id,
    }
    try:
        yield sse("start", ids)
        async for event in answer.events():
            if isinstance(event, Token):
                yield sse("token", {"text": event.text})
            elif isinstance(event, Finished):
                yield sse("done", answer_body(event))
            else:
                problem = problem_of(event.error)
                yield sse("error", {"error": {"type": problem.type, "message": problem.message}})
    finally:
        await answer.cancel()  # nothing to do when the events ran
