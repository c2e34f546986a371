"""What curation refuses, with the HTTP status each stands for (app/problems.py maps
them; the CLI prints the message)."""

from __future__ import annotations


class CurationError(ValueError):
    """A request curation cannot do; `status` and `type` say how a client sees it."""

    status = 422
    type = "invalid_request"


class NotFound(CurationError):
    """No such example, answer or dataset."""

    status = 404
    type = "not_found"


class Conflict(CurationError):
    """The name is taken, or the state forbids it (a dataset is never rebuilt)."""

    status = 409
    type = "conflict"
