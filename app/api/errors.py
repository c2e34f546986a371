"""One error shape for every failure a client sees: {"error": {"type", "message"}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.llm.base import EngineBusy, EngineUnavailable, GenerationTimeout, PromptTooLong
from app.rag.pipeline import QuestionTooLong
from app.telemetry.context import current

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status, a stable type and a message safe to show."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message


def error_body(type_: str, message: str, exc: BaseException | None = None) -> dict[str, object]:
    """The JSON body; `param` and `code` make it match OpenAI's error shape too.

    The error is also noted on the request, whose one log line then carries it (and
    the traceback of an unexpected one), with the request id the client gets here.
    """
    context = current.get()
    error: dict[str, object] = {"type": type_, "message": message, "param": None, "code": type_}
    if context is not None:
        context.error = {"type": type_, "message": message}
        if exc is not None:
            context.error["exc_info"] = (type(exc), exc, exc.__traceback__)
        error["request_id"] = context.request_id
    return {"error": error}


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to the one error shape, and never leak internals."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.type, exc.message), status_code=exc.status)

    @app.exception_handler(PromptTooLong)
    async def _too_long(_request: Request, exc: PromptTooLong) -> JSONResponse:
        return JSONResponse(error_body("context_length_exceeded", str(exc)), status_code=400)

    @app.exception_handler(QuestionTooLong)
    async def _question_too_long(_request: Request, exc: QuestionTooLong) -> JSONResponse:
        return JSONResponse(error_body("question_too_long", str(exc)), status_code=413)

    @app.exception_handler(EngineBusy)
    async def _busy(_request: Request, exc: EngineBusy) -> JSONResponse:
        return JSONResponse(
            error_body("model_busy", str(exc)),
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )

    @app.exception_handler(EngineUnavailable)
    async def _unavailable(_request: Request, exc: EngineUnavailable) -> JSONResponse:
        headers = {"Retry-After": "5"} if exc.status == 503 else None
        return JSONResponse(error_body(exc.type, str(exc)), status_code=exc.status, headers=headers)

    @app.exception_handler(GenerationTimeout)
    async def _timeout(_request: Request, exc: GenerationTimeout) -> JSONResponse:
        return JSONResponse(error_body("timeout", str(exc)), status_code=504)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in exc.errors()
        )
        return JSONResponse(
            error_body("invalid_request", problems or "invalid request"), status_code=422
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
        return JSONResponse(
            error_body("internal_error", "internal error; see the server log", exc),
            status_code=500,
        )
