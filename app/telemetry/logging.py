"""Logging: one JSON object per line (or readable lines in development), request
context on every record, and every secret redacted before anything is written."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from app.security.redaction import Redactor
from app.telemetry.context import current

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _context_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    context = current.get()
    if context is not None:
        fields["request_id"] = context.request_id
        if context.key_name:
            fields["key_name"] = context.key_name
        if context.conversation_id:
            fields["conversation_id"] = context.conversation_id
    # Anything passed as `extra=` that is not a standard LogRecord attribute.
    fields.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
    return fields


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", request fields…, "exc"}, redacted."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line."""
        event: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context_fields(record),
        }
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return self.redactor.redact(json.dumps(event, default=str, ensure_ascii=False))


class ConsoleFormatter(logging.Formatter):
    """Readable lines for a terminal, with the request fields appended, redacted."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """The line, then key=value request fields."""
        line = super().format(record)
        fields = " ".join(f"{k}={v}" for k, v in _context_fields(record).items())
        return self.redactor.redact(f"{line}  {fields}" if fields else line)


def install(redactor: Redactor, level: str, fmt: str) -> None:
    """Route every record (uvicorn's too) through one redacting handler on the root."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(redactor) if fmt == "json" else ConsoleFormatter(redactor))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # docchat logs each request itself, with its context; uvicorn's line would repeat it.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("alembic", "chromadb", "sentence_transformers", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
