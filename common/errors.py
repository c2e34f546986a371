"""What a refusal or failure means, said once, below everything that raises one.

A domain error carries its meaning (`kind`), a stable `code` a client or a report can
match on, and a message that is safe to show (`str(error)`): never a status, a header
or a response. Who answers over HTTP (app/api/problems.py) maps a kind to a status, and
`retry_after` to a Retry-After header; the CLI prints the message.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What went wrong, as whoever asked should understand it."""

    INVALID = "invalid"  # the request is malformed
    NOT_FOUND = "not_found"  # no such thing (or not one the caller may see)
    CONFLICT = "conflict"  # the state forbids it (a name taken, a job running)
    OVER_LIMIT = "over_limit"  # over a size docchat sets; refused before any work
    OVER_CONTEXT = "over_context"  # cannot fit the model's context window
    BUSY = "busy"  # full now; try again after `retry_after` seconds
    UNAVAILABLE = "unavailable"  # cannot serve now (a server down, a mismatched index)
    UPSTREAM_FAILED = "upstream_failed"  # a server docchat relies on failed the request
    TIMEOUT = "timeout"  # the work passed its deadline
    INTERNAL = "internal"  # unexpected: the details belong in the log only


class DocchatError(Exception):
    """A failure with a meaning; subclasses set `kind` and `code` (or pass them)."""

    kind: Kind = Kind.INTERNAL
    code: str = "internal_error"
    retry_after: int | None = None  # seconds after which trying again may succeed

    def __init__(
        self,
        message: str,
        *,
        kind: Kind | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        if code is not None:
            self.code = code
        if retry_after is not None:
            self.retry_after = retry_after


class InternalError(DocchatError):
    """An unexpected failure, as it is shown: nothing of its cause."""

    MESSAGE = "internal error; see the server log"

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)
