"""Log lines cannot leak a secret in an escaped form, nor be forged or drive a terminal
through text that users control (request paths)."""

from __future__ import annotations

import http.client
import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from app.security.redaction import Redactor
from app.telemetry import logging as logs

# A quote and a backslash: JSON writes this secret as pa\"ss\\word-123456.
SECRET = 'pa"ss\\word-123456'
# One record's first line starts with the time (asctime's format).
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@contextmanager
def captured(formatter: logging.Formatter) -> Iterator[io.StringIO]:
    """Everything logged through the root logger while inside, formatted."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_json_logs_redact_a_secret_with_a_quote_and_a_backslash() -> None:
    escaped = json.dumps(SECRET)[1:-1]
    assert escaped != SECRET
    log = logging.getLogger("docchat.test.json")
    with captured(logs.JsonFormatter(Redactor([SECRET]))) as stream:
        log.warning("connecting with %s", SECRET, extra={"dsn": f"user:{SECRET}@db"})
        log.warning("nested", extra={"error": {"detail": [SECRET]}})
        try:
            raise ValueError(f"bad password {SECRET}")
        except ValueError:
            log.exception("failed")
    text = stream.getvalue()
    assert SECRET not in text
    assert escaped not in text
    events = [json.loads(line) for line in text.splitlines()]
    assert events[0]["message"] == "connecting with [REDACTED]"
    assert events[0]["dsn"] == "user:[REDACTED]@db"
    assert events[1]["error"] == {"detail": ["[REDACTED]"]}
    assert "bad password [REDACTED]" in events[2]["exc"]


def test_json_logs_escape_what_json_would_write_raw() -> None:
    """C1 controls and bidi overrides become \\u escapes; the JSON still decodes to them."""
    text = "a\u202eb\x9bc\u2028d\x1be"
    with captured(logs.JsonFormatter(Redactor([]))) as stream:
        logging.getLogger("docchat.test.json").warning(text)
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert not CONTROL.search(line)
    assert json.loads(line)["message"] == text


def request_raw(base: str, target: str) -> int:
    """Send a request line exactly as written (no client-side normalising)."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.putrequest("GET", target, skip_accept_encoding=True)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


def test_console_log_escapes_control_characters_of_a_request_path(live_server: str) -> None:
    """A path with an encoded newline, ESC[31m, NUL, a C1 CSI and a right-to-left
    override: each record is still one line, and no control character reaches it."""
    forged = "2026-01-01 00:00:00,000 INFO    docchat.auth: admin logged in"
    target = (
        "/nope%0A"
        + forged.replace(" ", "%20")
        + "%0D%1B[31mred%00nul%C2%9Bcsi%E2%80%AEevil%E2%80%A8sep"
    )
    with captured(logs.ConsoleFormatter(Redactor([]))) as stream:
        assert request_raw(live_server, target) == 404
        logging.getLogger("docchat.test.console").warning("question:\nline two\x1b[2J")
    text = stream.getvalue()
    assert not CONTROL.search(text)
    lines = text.splitlines()
    assert all(RECORD_START.match(line) for line in lines), lines
    request_lines = [line for line in lines if "docchat.request" in line]
    assert len(request_lines) == 1
    assert "\\n" + forged in request_lines[0]
    assert "\\x1b[31mred\\x00nul\\x9bcsi\\u202eevil\\u2028sep" in request_lines[0]
    assert "question:\\nline two\\x1b[2J" in lines[-1]


def test_console_traceback_lines_are_marked_as_continuations() -> None:
    with captured(logs.ConsoleFormatter(Redactor([SECRET]))) as stream:
        try:
            raise ValueError(f"path /x\n2026-01-01 00:00:00,000 ERROR forged {SECRET}")
        except ValueError:
            logging.getLogger("docchat.test.console").exception("failed")
    lines = stream.getvalue().splitlines()
    assert RECORD_START.match(lines[0])
    assert all(line.startswith(logs.CONTINUATION) for line in lines[1:]), lines
    assert SECRET not in stream.getvalue()
