"""The OpenAI wire format (/v1/models, /v1/chat/completions), answered with retrieval.

The official `openai` client works unchanged. Retrieval runs on the last user
message; the sources ride along in an extra top-level field, `sources`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app.api.deps import ComponentsDep, IdentityDep, require_scope
from app.api.errors import ERROR_RESPONSES
from app.api.problems import ApiError, error_body, problem_of, quoted
from app.api.schemas import ModelList, ModelOut
from app.api.streaming import admitted, finished
from app.chat.events import Failed, Finished, Token
from app.chat.question import Question
from app.chat.service import Answer
from app.components import Components
from app.security.identity import Identity

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[require_scope("chat")])

MODEL_ALIAS = "docchat"
# Model ids are short (OpenAI's longest are under 64 characters); a longer one is
# refused by the schema before it is echoed or logged anywhere.
MAX_MODEL_CHARS = 256


class ContentPart(BaseModel):
    """A part of a multi-part message; only text parts carry meaning here."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One message of the conversation the client sends."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        """The message's text, parts joined."""
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    """OpenAI's stream_options."""

    include_usage: bool = False


class CompletionRequest(BaseModel):
    """The fields of a chat completion request that docchat honours; others are ignored."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(max_length=MAX_MODEL_CHARS)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool = False
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    n: int = 1
    stream_options: StreamOptions | None = None


def collection_of(requested: str, components: Components, caller: Identity | None) -> str | None:
    """The collection a model id addresses: `docchat/<collection>` one the caller may
    read; the model's own id or plain `docchat` the default one (None). Anything else,
    or a collection the caller may not read, is a model that does not exist."""
    if requested in (components.engine.model_id, MODEL_ALIAS):
        return None
    prefix = MODEL_ALIAS + "/"
    name = requested[len(prefix) :] if requested.startswith(prefix) else None
    if name is None or not components.access.may_read(caller, name):
        raise ApiError(
            404,
            "model_not_found",
            f"model {quoted(requested)} does not exist; GET /v1/models lists those you may use",
        )
    return name


@router.get("/models", responses=ERROR_RESPONSES)
async def list_models(components: ComponentsDep, identity: IdentityDep) -> ModelList:
    """The model this server answers with, its alias for the default collection, and
    `docchat/<collection>` for each collection the caller may read."""
    created = components.engine.created
    readable = await asyncio.to_thread(components.access.readable, identity)
    ids = [components.engine.model_id, MODEL_ALIAS]
    ids += [f"{MODEL_ALIAS}/{c.name}" for c in readable]
    return ModelList(data=[ModelOut(id=mid, created=created, owned_by="docchat") for mid in ids])


def question_of(request: CompletionRequest, caller: Any, collection: str | None = None) -> Question:
    """The last user message as the question, the turns before it as its history."""
    user_turns = [i for i, m in enumerate(request.messages) if m.role == "user"]
    if not user_turns or not request.messages[user_turns[-1]].text.strip():
        raise ApiError(400, "invalid_request", "messages: a non-empty user message is required")
    last = user_turns[-1]
    return Question(
        request.messages[last].text,
        history=tuple(
            (m.role, m.text)
            for m in request.messages[:last]
            if m.role in ("user", "assistant") and m.text
        ),
        extra_system="\n".join(
            m.text for m in request.messages if m.role in ("system", "developer") and m.text
        ),
        max_tokens=request.max_completion_tokens or request.max_tokens,
        temperature=request.temperature,
        store=False,
        caller=caller,
        collection=collection,
    )


def finish_reason(done: Finished) -> str:
    """OpenAI's finish reasons: stop, length or content_filter."""
    reason = done.finish_reason
    return reason if reason in ("length", "content_filter") else "stop"


def usage_body(done: Finished) -> dict[str, int]:
    """OpenAI's usage object."""
    return {
        "prompt_tokens": done.usage.prompt_tokens,
        "completion_tokens": done.usage.completion_tokens,
        "total_tokens": done.usage.total_tokens,
    }


@router.post("/chat/completions", response_model=None, responses=ERROR_RESPONSES)
async def chat_completions(
    body: CompletionRequest,
    components: ComponentsDep,
    identity: IdentityDep,
    request: Request,
) -> Response:
    """Answer the last user message from the documentation (of the collection the
    model id names)."""
    collection = await asyncio.to_thread(collection_of, body.model, components, identity)
    if body.n != 1:
        raise ApiError(400, "invalid_request", "n: only 1 choice is supported")
    question = question_of(body, identity, collection)
    answer = await admitted(request, components.chat, question)
    completion = Completion(body, answer)
    if not body.stream:
        return JSONResponse(completion.whole(await finished(request, answer)))
    return StreamingResponse(
        completion.chunks(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


class Completion:
    """One answer framed as OpenAI's chat completion (whole, or as chunks)."""

    def __init__(self, request: CompletionRequest, answer: Answer) -> None:
        self.request = request
        self.answer = answer
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.sources = [c.as_dict() for c in answer.started.citations]
        # OpenAI's name for "which backend configuration wrote this": the files' hashes.
        self.fingerprint = answer.release.fingerprint

    def whole(self, done: Finished) -> dict[str, Any]:
        """The non-streamed response."""
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": done.text},
                    "finish_reason": finish_reason(done),
                    "logprobs": None,
                }
            ],
            "usage": usage_body(done),
            "system_fingerprint": self.fingerprint,
            "sources": self.sources,
            "grounded": done.checks.grounded,
            "grounding_score": done.checks.grounding_score,
        }

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        """One `data:` line of the stream."""
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.request.model,
            "system_fingerprint": self.fingerprint,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    async def chunks(self) -> AsyncIterator[str]:
        """The streamed response; closing it (the client left) cancels the answer."""
        try:
            yield self.chunk({"role": "assistant", "content": ""})
            async for event in self.answer.events():
                if isinstance(event, Token):
                    yield self.chunk({"content": event.text})
                elif isinstance(event, Failed):
                    # The status is sent already: an error object in the stream, as
                    # OpenAI does (its client raises APIError on it).
                    problem = problem_of(event.error)
                    yield f"data: {json.dumps(error_body(problem.type, problem.message))}\n\n"
                    return
                else:
                    for line in self.ending(event):
                        yield line
        finally:
            await self.answer.cancel()  # nothing to do when the events ran

    def ending(self, done: Finished) -> list[str]:
        """The notice that replaced the answer (if one did), the finish, usage, [DONE]."""
        lines = []
        if done.notice:  # it follows what was streamed
            lines.append(self.chunk({"content": "\n\n" + done.notice}))
        lines.append(
            self.chunk(
                {},
                finish_reason(done),
                sources=self.sources,
                grounded=done.checks.grounded,
                grounding_score=done.checks.grounding_score,
            )
        )
        options = self.request.stream_options
        if options and options.include_usage:
            usage = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.request.model,
                "system_fingerprint": self.fingerprint,
                "choices": [],
                "usage": usage_body(done),
            }
            lines.append(f"data: {json.dumps(usage)}\n\n")
        lines.append("data: [DONE]\n\n")
        return lines
