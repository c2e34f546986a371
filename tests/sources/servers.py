"""Real servers on loopback for the source tests: git's own smart-HTTP server
(`git http-backend`, run as CGI under a small WSGI server that asks for a token) and a
website (http.server) with robots.txt, a sitemap, ETags, redirects and a calendar trap."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

BACKEND = "/usr/lib/git-core/git-http-backend"


class _QuietWSGI(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGI(WSGIServer):
    daemon_threads = True


@dataclass
class GitServer:
    """Repositories under `root`, served at `url`/<name>; pushes go to the bare repo on
    disk directly. `token`: the one accepted (None: no authentication)."""

    root: Path
    url: str
    token: str | None = None
    requests: list[str] = field(default_factory=list)
    headers_seen: list[str] = field(default_factory=list)

    def app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.requests.append(environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", ""))
        auth = environ.get("HTTP_AUTHORIZATION", "")
        self.headers_seen.append(auth)
        if self.token is not None:
            expected = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
            if auth != f"Basic {expected}":
                start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"')])
                return [b"authentication required\n"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
        }
        if environ.get("HTTP_CONTENT_ENCODING"):
            env["HTTP_CONTENT_ENCODING"] = environ["HTTP_CONTENT_ENCODING"]
        if environ.get("HTTP_GIT_PROTOCOL"):
            env["GIT_PROTOCOL"] = environ["HTTP_GIT_PROTOCOL"]
        out = subprocess.run([BACKEND], input=body, env=env, capture_output=True, check=True)
        head, _, payload = out.stdout.partition(b"\r\n\r\n")
        status, headers = "200 OK", []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name, value.strip()))
        start_response(status, headers)
        return [payload]


@contextmanager
def git_server(root: Path, token: str | None = None) -> Iterator[GitServer]:
    """Serve the repositories under `root` on a free loopback port."""
    server = GitServer(root, "", token)
    httpd = make_server("127.0.0.1", 0, server.app, _ThreadingWSGI, _QuietWSGI)
    server.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()


def git(cwd: Path, *args: str) -> str:
    """Run git (a fixed identity, no user config)."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=True)
    return done.stdout.decode().strip()


@dataclass
class Site:
    """A website's pages by path: (content type, body); `requests` logs (method, path,
    status) so tests can see what the crawler asked and what it got."""

    pages: dict[str, tuple[str, bytes]]
    redirects: dict[str, str] = field(default_factory=dict)
    url: str = ""
    requests: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, path: str, body: str, kind: str = "text/html") -> None:
        with self.lock:
            self.pages[path] = (kind, body.encode())

    def drop(self, path: str) -> None:
        with self.lock:
            self.pages.pop(path, None)

    def statuses(self, path: str) -> list[int]:
        return [status for p, status in self.requests if p == path]


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path
            if path in site.redirects:
                return self._send(301, path, b"", {"Location": site.redirects[path]})
            if path.startswith("/docs/calendar"):  # an endless trap: each month links on
                month = int(path.rsplit("=", 1)[-1]) if "=" in path else 0
                body = (
                    f"<html><body><h1>Month {month}</h1><p>Nothing happens in month "
                    f"{month}, as in every month of this calendar.</p>"
                    f'<a href="/docs/calendar?m={month + 1}">next</a></body></html>'
                ).encode()
                return self._send(200, path, body, {"Content-Type": "text/html"})
            with site.lock:
                page = site.pages.get(path)
            if page is None:
                return self._send(404, path, b"not found", {})
            kind, body = page
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                return self._send(304, path, b"", {"ETag": etag})
            return self._send(200, path, body, {"Content-Type": kind, "ETag": etag})

        def _send(self, status: int, path: str, body: bytes, headers: dict[str, str]) -> None:
            site.requests.append((path, status))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def website(site: Site) -> Iterator[Site]:
    """Serve `site` on a free loopback port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    httpd.daemon_threads = True
    site.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        httpd.shutdown()
        httpd.server_close()
