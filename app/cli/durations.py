"""Spans of time as people type them: 30d, 12h, 90m, 2w."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_span(text: str) -> timedelta:
    """30d, 12h, 90m or 2w as a timedelta; ValueError for anything else."""
    match = _SPAN.match(text.lower())
    if match is None:
        raise ValueError(f"{text!r} is not a span of time: use e.g. 30d, 12h, 90m or 2w")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def parse_since(text: str) -> datetime:
    """A span back from now (7d) or an ISO date or time (UTC unless it says otherwise)."""
    try:
        return datetime.now(UTC) - parse_span(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a span (7d, 12h) nor an ISO date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
