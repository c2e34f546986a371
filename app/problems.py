"""What a client is told when something fails: a status, a stable type and a message
that is safe to show. One mapping from exceptions to problems serves the HTTP error
handlers, the streamed routes (whose status is already sent) and the CLI alike."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from app.curation.errors import CurationError
from app.llm.base import EngineBusy, EngineUnavailable, GenerationTimeout, PromptTooLong
from app.store.index_record import EmbeddingMismatch
from app.telemetry.context import current

log = logging.getLogger(__name__)
# A value from the request that a message quotes back is cut to this many characters:
# the message goes into the response and the request's log line.
QUOTED_CHARS = 64


def quoted(value: str, limit: int = QUOTED_CHARS) -> str:
    """`value` as repr() writes it, cut to `limit` characters with a marker saying how
    many more there were."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value) - limit} more characters)"


@dataclass(frozen=True)
class Problem:
    """One failure as the client sees it."""

    status: int
    type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """An error with an HTTP status, a stable type and a message safe to show."""

    def __init__(
        self, status: int, type_: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers or {}

    @classmethod
    def of(cls, problem: Problem) -> ApiError:
        """The problem raised as an error (the routes that answer with one JSON body)."""
        return cls(problem.status, problem.type, problem.message, problem.headers)


class QuestionTooLong(ApiError):
    """A question over rag.max_question_chars; refused before any work is done."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413, "question_too_long", f"the question is longer than {limit} characters"
        )


class RequestTooLarge(ApiError):
    """A request over rag.max_messages or rag.max_request_chars; refused before any work."""

    def __init__(self, message: str) -> None:
        super().__init__(413, "request_too_large", message)


def problem_from(exc: BaseException) -> Problem | None:
    """The problem a known exception stands for; None for an unexpected one (a 500
    whose details belong in the log only)."""
    if isinstance(exc, ApiError):
        return Problem(exc.status, exc.type, exc.message, exc.headers)
    if isinstance(exc, CurationError):
        return Problem(exc.status, exc.type, str(exc))
    if isinstance(exc, EngineBusy):
        return Problem(429, "model_busy", str(exc), {"Retry-After": str(exc.retry_after)})
    if isinstance(exc, EngineUnavailable):
        headers = {"Retry-After": "5"} if exc.status == 503 else {}
        return Problem(exc.status, exc.type, str(exc), headers)
    if isinstance(exc, GenerationTimeout):
        return Problem(504, "timeout", str(exc))
    if isinstance(exc, PromptTooLong):
        return Problem(400, "context_length_exceeded", str(exc))
    if isinstance(exc, EmbeddingMismatch):
        return Problem(503, "embedding_mismatch", str(exc))
    return None


INTERNAL = Problem(500, "internal_error", "internal error; see the server log")


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
