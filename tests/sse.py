"""A small server-sent-events parser for tests (the format is simple and specified)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def parse_sse(lines: Iterable[str]) -> list[tuple[str, Any]]:
    """(event, decoded data) pairs from the lines of an SSE stream."""
    events: list[tuple[str, Any]] = []
    name, data = "message", []
    for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            if data:
                events.append((name, json.loads("\n".join(data))))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        events.append((name, json.loads("\n".join(data))))
    return events
