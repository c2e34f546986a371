"""Bounds on the request head (request line and headers), enforced by the HTTP server.

uvicorn's httptools protocol has none: httptools gathers a header's value in memory
until its end, so a 64 MB header is read in full, and any number of headers is taken.
The protocol here counts the head's bytes as they arrive and its header fields as they
are parsed, and answers 431 Request Header Fields Too Large the moment either passes its
limit, having held at most the limit (plus one read) of that head.

Nor does uvicorn bound the time a head takes: its keep-alive timer is cancelled by any
byte, so a head sent a byte a second (slowloris), or a connection that sends nothing,
stays open for good. Here a head must be complete within `head_timeout_s` of its first
byte (of the connection's opening, for the first one), or it is answered 408 and closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.api.problems import error_body

log = logging.getLogger(__name__)
# After the 431, the client's remaining bytes are read and dropped for this long before
# the socket closes: closing with unread data sends a reset, which can make the client
# lose the answer before it reads it.
LINGER_S = 2.0


class HeadLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a cap on head bytes, on header fields and on
    the time a head takes."""

    max_head_bytes = 32 * 1024
    max_header_count = 100
    head_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # reading (or waiting for) a request line and headers
        self._head_bytes = 0  # bytes received while the current head is incomplete
        self._header_count = 0
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A new connection: its first head is timed from now."""
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: nothing is left to time."""
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser, a head at most `max_head_bytes` at a time."""
        if self._refused:
            return  # lingering: drop what still comes
        if self._in_head and self._head_timer is None:
            self._start_head_timer()  # the first byte of a head on a kept-alive connection
        # While a head is incomplete its bytes are fed no further than the limit, so
        # the parser never holds more of it; once the head is done the rest goes whole.
        while data and self._in_head:
            room = self.max_head_bytes - self._head_bytes
            if room <= 0:
                self._refuse(f"request head over {self.max_head_bytes} bytes")
                return
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self._refused or self.transport.is_closing():
                return
            if self.transport.get_protocol() is not self:  # upgraded (WebSocket)
                if data:
                    self.transport.get_protocol().data_received(data)  # type: ignore[attr-defined]
                return
        if data:
            super().data_received(data)

    def on_message_begin(self) -> None:
        """A new request: its header fields are counted from zero."""
        self._header_count = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        """Part of the request target (ignored once the request is refused)."""
        if not self._refused:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """One complete header field, counted."""
        if self._refused:
            return
        self._header_count += 1
        if self._header_count > self.max_header_count:
            self._refuse(f"more than {self.max_header_count} header fields")
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is complete: the request runs unless it was refused."""
        self._in_head = False
        self._head_bytes = 0
        self._stop_head_timer()
        if not self._refused:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        """A piece of the body (ignored once the request is refused)."""
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        """The request is read: the next head may begin."""
        self._in_head = True
        if not self._refused:
            super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a malformed request, unless it has been answered 431."""
        if not self._refused:
            super().send_400_response(msg)

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        """The head was not complete in time: 408 and close."""
        self._head_timer = None
        if self._in_head and not self._refused and not self.transport.is_closing():
            reason = f"request head not complete within {self.head_timeout_s:g} s"
            self._refuse(reason, 408, b"Request Timeout", "request_timeout")

    def _refuse(
        self,
        reason: str,
        status: int = 431,
        phrase: bytes = b"Request Header Fields Too Large",
        type_: str = "request_header_fields_too_large",
    ) -> None:
        """Answer in docchat's error shape (431 by default), then linger and close."""
        self._refused = True
        self._stop_head_timer()
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"
        log.warning("request refused before it was read (%d): %s, from %s", status, reason, client)
        body = json.dumps(error_body(type_, reason)).encode()
        head = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.transport.resume_reading()  # drain, in case the flow control paused it
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()


def head_limited_protocol(
    max_head_bytes: int, max_header_count: int, head_timeout_s: float = 10.0
) -> type[HttpToolsProtocol]:
    """The protocol class to give uvicorn (`http=`), with these limits."""

    class Limited(HeadLimitedProtocol):
        pass

    Limited.max_head_bytes = max_head_bytes
    Limited.max_header_count = max_header_count
    Limited.head_timeout_s = head_timeout_s
    return Limited
