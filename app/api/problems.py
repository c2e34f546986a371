"""What a client is told when something fails: a status, a stable type and a message
that is safe to show. One mapping from exceptions to problems serves the HTTP error
handlers, the streamed routes (whose status is already sent) and the audit trail:
a domain error (common/errors.py) says what it means, and here its kind becomes a
status; an ApiError is a route's own refusal, status and all."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.telemetry.context import current
from common.errors import DocchatError, InternalError, Kind

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


# The status each kind of domain error is answered with.
STATUS_OF_KIND: dict[Kind, int] = {
    Kind.INVALID: 422,
    Kind.NOT_FOUND: 404,
    Kind.CONFLICT: 409,
    Kind.OVER_LIMIT: 413,
    Kind.OVER_CONTEXT: 400,
    Kind.BUSY: 429,
    Kind.UNAVAILABLE: 503,
    Kind.UPSTREAM_FAILED: 502,
    Kind.TIMEOUT: 504,
    Kind.INTERNAL: 500,
}


def problem_of(error: DocchatError) -> Problem:
    """The problem a domain error stands for: its kind's status, its code as the type,
    its message, and Retry-After when it says when to try again."""
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
    return Problem(STATUS_OF_KIND[error.kind], error.code, str(error), headers)


def problem_from(exc: BaseException) -> Problem | None:
    """The problem a known exception stands for; None for an unexpected one (a 500
    whose details belong in the log only)."""
    if isinstance(exc, ApiError):
        return Problem(exc.status, exc.type, exc.message, exc.headers)
    if isinstance(exc, DocchatError):
        return problem_of(exc)
    return None


INTERNAL = problem_of(InternalError())


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
