"""The OpenAI wire format (/v1/models, /v1/chat/completions), answered with retrieval.

The official `openai` client works unchanged. Retrieval runs on the last user
message; the sources ride along in an extra top-level field, `sources`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import ComponentsDep, require_scope
from app.api.errors import ApiError, error_body
from app.llm.base import EngineBusy, EngineUnavailable, GenerationTimeout

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[require_scope("chat")])

MODEL_ALIAS = "docchat"


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
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    n: int = 1
    stream_options: StreamOptions | None = None


def _check_model(requested: str, model_id: str) -> None:
    if requested not in (model_id, MODEL_ALIAS):
        raise ApiError(
            404,
            "model_not_found",
            f"model {requested!r} does not exist; available: {model_id!r}, {MODEL_ALIAS!r}",
        )


@router.get("/models")
async def list_models(components: ComponentsDep) -> dict[str, Any]:
    """The one model this server answers with (and its alias)."""
    created = components.engine.created
    return {
        "object": "list",
        "data": [
            {"id": mid, "object": "model", "created": created, "owned_by": "docchat"}
            for mid in (components.engine.model_id, MODEL_ALIAS)
        ],
    }


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    request: CompletionRequest, components: ComponentsDep
) -> JSONResponse | StreamingResponse:
    """Answer the last user message from the documentation."""
    engine = components.engine
    _check_model(request.model, engine.model_id)
    if request.n != 1:
        raise ApiError(400, "invalid_request", "n: only 1 choice is supported")
    user_turns = [i for i, m in enumerate(request.messages) if m.role == "user"]
    if not user_turns or not request.messages[user_turns[-1]].text.strip():
        raise ApiError(400, "invalid_request", "messages: a non-empty user message is required")
    last = user_turns[-1]
    question = request.messages[last].text.strip()
    extra_system = "\n".join(
        m.text for m in request.messages if m.role in ("system", "developer") and m.text
    )
    history: list[tuple[str, str]] = [
        (m.role, m.text)
        for m in request.messages[:last]
        if m.role in ("user", "assistant") and m.text
    ]
    previous = next((text for role, text in reversed(history) if role == "user"), None)
    answerer = components.answerer
    prepared = await answerer.prepare(
        question,
        history,
        previous_question=previous,
        extra_system=extra_system,
        max_tokens=request.max_completion_tokens or request.max_tokens,
    )
    sources = [c.as_dict() for c in prepared.citations]
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    def usage() -> dict[str, int]:
        prompt, completion = prepared.stats.prompt_tokens, prepared.stats.completion_tokens
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def finish_reason() -> str:
        reason = prepared.stats.finish_reason
        return reason if reason in ("length", "content_filter") else "stop"

    if not request.stream:
        text = "".join(
            [piece async for piece in answerer.stream(prepared, temperature=request.temperature)]
        )
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": request.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": answerer.final_text(prepared, text),
                        },
                        "finish_reason": finish_reason(),
                        "logprobs": None,
                    }
                ],
                "usage": usage(),
                "sources": sources,
                "grounded": prepared.grounded,
                "grounding_score": prepared.checks.get("grounding_score"),
            }
        )

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": request.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    async def events() -> AsyncIterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        try:
            async for piece in answerer.stream(prepared, temperature=request.temperature):
                yield chunk({"content": piece})
        except (EngineUnavailable, EngineBusy, GenerationTimeout) as exc:
            # The status is sent already: an error object in the stream, as OpenAI does
            # (its client raises APIError on it).
            kind = "timeout" if isinstance(exc, GenerationTimeout) else "model_busy"
            if isinstance(exc, EngineUnavailable):
                kind = exc.type
            yield f"data: {json.dumps(error_body(kind, str(exc)))}\n\n"
            return
        if prepared.blocked or prepared.grounded is False:
            final = answerer.final_text(prepared, "")
            if final:  # a notice replaces the answer: it follows what was streamed
                yield chunk({"content": "\n\n" + final})
        yield chunk(
            {},
            finish_reason(),
            sources=sources,
            grounded=prepared.grounded,
            grounding_score=prepared.checks.get("grounding_score"),
        )
        if request.stream_options and request.stream_options.include_usage:
            body = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": request.model,
                "choices": [],
                "usage": usage(),
            }
            yield f"data: {json.dumps(body)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
