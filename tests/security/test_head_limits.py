"""Request heads (request line and headers) are bounded by the server `docchat serve`
runs: an oversized or over-long head is answered 431 and closed before it is read in
full. Checked with a raw socket against a real `docchat serve` process."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import Served, docchat_serve

MAX_HEAD_BYTES = 32 * 1024  # the defaults of server.max_header_bytes / max_header_count
MAX_HEADERS = 100


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("head-limits")
    with docchat_serve(serve_env(root), root / "server.log") as server:
        yield server


def serve_env(root: Path, **settings: str) -> dict[str, str]:
    """The environment of a `docchat serve` on its own data dir, ignoring local files."""
    return {
        **os.environ,
        "DOCCHAT_ENV": "test",
        "DOCCHAT_DATA_DIR": str(root / "data"),
        "DOCCHAT_SECRETS_DIR": str(root / "no-secrets"),
        "DOCCHAT_ENV_FILE": str(root / "absent.env"),
        "DOCCHAT_LLM__PARALLEL": "1",
        **{"DOCCHAT_" + name.upper(): value for name, value in settings.items()},
    }


def exchange(served: Served, data: bytes, timeout: float = 15) -> tuple[bytes, bool, float]:
    """Send `data` on a new connection and read until the server closes it.

    Returns what came back, whether the server closed the connection (as opposed to
    the read timing out), and the seconds it took.
    """
    target = urlsplit(served.base)
    started = time.monotonic()
    received = b""
    closed = False
    with socket.create_connection((target.hostname, target.port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)  # the server may refuse before all of it is sent
        try:
            while chunk := sock.recv(65536):
                received += chunk
            closed = True
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            pass
    return received, closed, time.monotonic() - started


def status(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


def test_an_unfinished_1_mb_header_is_refused_at_once(served: Served) -> None:
    """The header never ends: a server that read heads in full would wait for it, and
    the exchange would end by the client's read timeout, not by the server closing (so
    `closed` is the check, where a fixed 5 s limit failed on a loaded machine)."""
    head = b"GET /healthz HTTP/1.1\r\nHost: docchat\r\nX-Big: " + b"a" * 1_000_000
    response, closed, _ = exchange(served, head)
    assert status(response) == 431
    body = json.loads(response.partition(b"\r\n\r\n")[2])
    assert body["error"]["type"] == "request_header_fields_too_large"
    assert closed, "the connection stays open"
    assert "request refused before it was read (431)" in served.log.read_text()


def test_ten_thousand_headers_are_refused(served: Served) -> None:
    lines = b"".join(b"X-H%d: 1\r\n" % i for i in range(10_000))
    response, closed, _ = exchange(
        served, b"GET /healthz HTTP/1.1\r\nHost: d\r\n" + lines + b"\r\n"
    )
    assert status(response) == 431
    assert closed


def test_too_many_small_headers_are_refused_below_the_byte_limit(served: Served) -> None:
    lines = b"".join(b"X-H%d: 1\r\n" % i for i in range(MAX_HEADERS + 10))
    assert len(lines) < MAX_HEAD_BYTES // 4
    response, closed, _ = exchange(
        served, b"GET /healthz HTTP/1.1\r\nHost: d\r\n" + lines + b"\r\n"
    )
    assert status(response) == 431
    assert b"header fields" in response
    assert closed


def test_requests_within_the_limits_are_served(served: Served) -> None:
    # Just under both limits: 90 headers, about 24 KB in all; then a second request on
    # the same connection (keep-alive), counted afresh.
    lines = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 250) for i in range(MAX_HEADERS - 12))
    request = b"GET /healthz HTTP/1.1\r\nHost: d\r\n" + lines + b"\r\n"
    assert MAX_HEAD_BYTES * 2 // 3 < len(request) < MAX_HEAD_BYTES
    last = b"GET /healthz HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"
    response, closed, _ = exchange(served, request + request + last)
    assert response.count(b"HTTP/1.1 200 OK") == 3, response[:300]
    assert closed


def test_the_limits_are_settings(tmp_path: Path) -> None:
    """A lower limit set in the environment is the one `docchat serve` enforces."""
    env = serve_env(tmp_path, server__max_header_bytes="4096")
    with docchat_serve(env, tmp_path / "server.log") as server:
        ok = (
            b"GET /healthz HTTP/1.1\r\nHost: d\r\nX-A: "
            + b"a" * 3000
            + b"\r\nConnection: close\r\n\r\n"
        )
        assert status(exchange(server, ok)[0]) == 200
        big = b"GET /healthz HTTP/1.1\r\nHost: d\r\nX-A: " + b"a" * 5000 + b"\r\n\r\n"
        assert status(exchange(server, big)[0]) == 431


def trickle(served: Served, head: bytes, interval: float) -> tuple[int, bytes]:
    """Send `head` a byte every `interval` seconds; stop when the server closes the
    connection. Returns how many bytes were sent by then, and what came back."""
    target = urlsplit(served.base)
    received = b""
    with socket.create_connection((target.hostname, target.port), timeout=30) as sock:
        for sent in range(len(head)):
            try:
                sock.sendall(head[sent : sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                return sent, received
            time.sleep(interval)
            sock.setblocking(False)
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                chunk = None
            except ConnectionResetError:
                return sent + 1, received
            finally:
                sock.setblocking(True)
            if chunk is not None:
                received += chunk
                if not chunk:  # the server closed it
                    return sent + 1, received
        return len(head), received


def one_response(sock: socket.socket) -> bytes:
    """Read one whole response (head and Content-Length body) from a kept-alive socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(65536)
    return data


def test_a_head_sent_a_byte_at_a_time_is_cut_off(tmp_path: Path) -> None:
    """Issue 22: a head sent at 1 byte/s stayed open (45 s and counting): uvicorn's only
    timer is reset by every byte. With server.header_timeout_s=1 the server answers 408
    and closes the connection while the client is still trickling a head that would take
    10 s; a request sent at once, and one sent after an idle pause on a kept-alive
    connection, are served as usual."""
    env = serve_env(tmp_path, server__header_timeout_s="1")
    with docchat_serve(env, tmp_path / "server.log") as server:
        fast = b"GET /healthz HTTP/1.1\r\nHost: d\r\n\r\n"
        target = urlsplit(server.base)
        with socket.create_connection((target.hostname, target.port), timeout=30) as sock:
            sock.sendall(fast)
            assert status(one_response(sock)) == 200
            time.sleep(1.5)  # idle between requests is not head time
            sock.sendall(fast)
            assert status(one_response(sock)) == 200
        head = b"GET /healthz HTTP/1.1\r\nHost: d\r\nX-Slow: " + b"s" * 60 + b"\r\n\r\n"
        sent, received = trickle(server, head, interval=0.1)
        assert sent < len(head), "the server waited for the whole 10 s head"
        assert status(received) == 408
        assert json.loads(received.partition(b"\r\n\r\n")[2])["error"]["type"] == "request_timeout"
        assert "request refused before it was read (408)" in server.log.read_text()
