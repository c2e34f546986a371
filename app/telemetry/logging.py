"""Logging: one JSON object per line (or readable lines in development), request
context on every record, and every secret redacted before anything is written.

Logged text is not trusted (a request path, a question): it is redacted value by value
before it is serialized, so a secret is caught in its raw form, and it can neither
start a line of its own nor drive the terminal (see `escape_controls`).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from app.security.redaction import Redactor
from app.telemetry.context import current

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# What could end a line or reach the terminal as a command: C0 controls (newline, CR,
# ESC, NUL…), then DEL and C1 controls, Unicode line/paragraph separators, bidi controls
# (these last ones JSON would write raw, with ensure_ascii=False).
_UNICODE_CONTROLS = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROLS = re.compile(f"[\x00-\x1f{_UNICODE_CONTROLS}]")
_JSON_RAW_CONTROLS = re.compile(f"[{_UNICODE_CONTROLS}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Continuation lines of a console record (its traceback) start with this, so no text
# inside a record can pass for a record of its own.
CONTINUATION = "  | "


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape_controls(text: str) -> str:
    """`text` on one line and inert in a terminal: each control character written as
    an escape (a newline as \\n, ESC as \\x1b, a right-to-left override as \\u202e)."""
    return _CONTROLS.sub(_escape, text)


def _redact_value(value: Any, redactor: Redactor) -> Any:
    """A log field with every string in it redacted (others kept, or made strings)."""
    if isinstance(value, str):
        return redactor.redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {redactor.redact(str(k)): _redact_value(v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v, redactor) for v in value]
    return redactor.redact(str(value))


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
        """One JSON line; values are redacted before serializing, where a secret still
        reads as itself (JSON would escape a quote or backslash in it)."""
        event: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context_fields(record),
        }
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            event["stack"] = self.formatStack(record.stack_info)
        line = json.dumps(_redact_value(event, self.redactor), ensure_ascii=False)
        # Still the same JSON: these characters become \uXXXX escapes.
        return _JSON_RAW_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


class ConsoleFormatter(logging.Formatter):
    """Readable lines for a terminal, with the request fields appended, redacted.

    A record is one line; a traceback follows on continuation lines that start with
    CONTINUATION. Control characters in any logged text are escaped.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def _clean(self, text: str) -> str:
        return escape_controls(self.redactor.redact(text))

    def format(self, record: logging.LogRecord) -> str:
        """The line, then key=value request fields, then any traceback, indented."""
        line = (
            f"{self.formatTime(record)} {record.levelname:<7} "
            f"{self._clean(record.name)}: {self._clean(record.getMessage())}"
        )
        fields = " ".join(
            f"{self._clean(str(k))}={self._clean(str(v))}"
            for k, v in _context_fields(record).items()
        )
        if fields:
            line = f"{line}  {fields}"
        trace = self.formatException(record.exc_info) if record.exc_info else ""
        if record.stack_info:
            trace = f"{trace}\n{self.formatStack(record.stack_info)}".lstrip("\n")
        for part in self.redactor.redact(trace).splitlines():
            line += "\n" + CONTINUATION + escape_controls(part)
        return line


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
