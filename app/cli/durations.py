"""Spans of time as people type them: 30d, 12h, 90m, 2w."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_SPAN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# The longest span taken (a century, as app/store/retention.py's MAX_DAYS): a longer one
# reaches before any record, and past about 2,000 years "now minus it" is no date at all.
MAX_DAYS = 36_500


def parse_span(text: str) -> timedelta:
    """30d, 12h, 90m or 2w as a timedelta of at most MAX_DAYS; ValueError for anything else."""
    match = _SPAN.fullmatch(text.lower())
    if match is None:
        raise ValueError(f"{text!r} is not a span of time: use e.g. 30d, 12h, 90m or 2w")
    try:
        span = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    except OverflowError:  # over timedelta's 999,999,999 days
        span = timedelta.max
    if span > timedelta(days=MAX_DAYS):
        raise ValueError(f"{text!r} is too long a span: at most {MAX_DAYS} days (100 years)")
    return span


def parse_since(text: str) -> datetime:
    """A span back from now (7d) or an ISO date or time (UTC unless it says otherwise)."""
    if _SPAN.fullmatch(text.lower()):
        return datetime.now(UTC) - parse_span(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a span (7d, 12h) nor an ISO date") from None
    try:
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:  # 9999-12-31T23:59:59-23:59 is in the year 10000 in UTC
        raise ValueError(f"{text!r} is out of range once converted to UTC") from None
