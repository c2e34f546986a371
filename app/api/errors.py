"""One error shape for every failure a client sees: {"error": {"type", "message"}}.

Which status and type an exception stands for is decided once, in app/api/problems.py;
here it becomes a response.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.problems import INTERNAL, ApiError, Problem, error_body, problem_from
from app.api.streaming import ClientLeft
from common.errors import DocchatError

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    """What went wrong, safe to show."""

    type: str
    message: str
    param: str | None = None
    code: str | None = None
    request_id: str | None = None


class ErrorBody(BaseModel):
    """Every error docchat answers with (OpenAI's error shape too)."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "The prompt cannot fit the model's context."),
        (401, "No valid API key."),
        (403, "The key's scope does not allow this route."),
        (404, "No such conversation."),
        (413, "The question or the request is over its limit."),
        (422, "The request is malformed."),
        (429, "The model's queue is full, or the caller's rate limit is spent (Retry-After)."),
        (504, "The request passed its deadline."),
    )
}


def problem_response(problem: Problem, exc: BaseException | None = None) -> JSONResponse:
    """A problem as a JSON response with its headers (Retry-After)."""
    return JSONResponse(
        error_body(problem.type, problem.message, exc),
        status_code=problem.status,
        headers=problem.headers or None,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to the one error shape, and never leak internals."""

    async def _known(_request: Request, exc: Exception) -> JSONResponse:
        problem = problem_from(exc)
        return problem_response(problem or INTERNAL, None if problem else exc)

    for known in (ApiError, DocchatError):
        app.add_exception_handler(known, _known)

    @app.exception_handler(ClientLeft)
    async def _left(_request: Request, _exc: ClientLeft) -> Response:
        return Response(status_code=499)  # nginx's "client closed request": nobody reads it

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in exc.errors()
        )
        return JSONResponse(
            error_body("invalid_request", reasons or "invalid request"), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body("http_error", str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # Logged once, by the request's log line, with the traceback: never sent.
        return problem_response(INTERNAL, exc)
