"""Per-request context carried by contextvars into logs (and threads via to_thread)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # fullmatch: no trailing "\n"


@dataclass
class RequestContext:
    """What a log line of this request should carry; filled in as the request runs."""

    request_id: str
    key_name: str | None = None
    conversation_id: str | None = None
    error: dict[str, Any] = field(default_factory=dict)


current: ContextVar[RequestContext | None] = ContextVar("docchat_request", default=None)


def request_id_from(header: str | None) -> str:
    """The client's X-Request-ID when it is sane, else a new one."""
    if header and _VALID_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def annotate(**fields: Any) -> None:
    """Set fields (key_name, conversation_id) on the current request's context."""
    context = current.get()
    if context is not None:
        for name, value in fields.items():
            setattr(context, name, value)
