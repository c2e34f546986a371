"""What curation refuses, and what each refusal means (app/api/problems.py maps the
kind to what a client sees; the CLI prints the message)."""

from __future__ import annotations

from common.errors import DocchatError, Kind


class CurationError(DocchatError, ValueError):
    """A request curation cannot do: an invalid one, unless a subclass says otherwise."""

    kind = Kind.INVALID
    code = "invalid_request"


class NotFound(CurationError):
    """No such example, answer or dataset."""

    kind = Kind.NOT_FOUND
    code = "not_found"


class Conflict(CurationError):
    """The name is taken, or the state forbids it (a dataset is never rebuilt)."""

    kind = Kind.CONFLICT
    code = "conflict"
