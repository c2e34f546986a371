"""One error shape for every failure a client sees: {"error": {"type", "message"}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.llm.engine import PromptTooLong

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status, a stable type and a message safe to show."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message


def error_body(type_: str, message: str) -> dict[str, object]:
    """The JSON body; `param` and `code` make it match OpenAI's error shape too."""
    return {"error": {"type": type_, "message": message, "param": None, "code": type_}}


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to the one error shape, and never leak internals."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.type, exc.message), status_code=exc.status)

    @app.exception_handler(PromptTooLong)
    async def _too_long(_request: Request, exc: PromptTooLong) -> JSONResponse:
        return JSONResponse(error_body("context_length_exceeded", str(exc)), status_code=400)

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
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body("internal_error", "internal error; see the server log"), status_code=500
        )
