"""The outermost middleware: request id, one log line per request, HTTP metrics and
the request's root span."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from fastapi.routing import iter_route_contexts
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.telemetry.context import REQUEST_ID_HEADER, RequestContext, current, request_id_from
from app.telemetry.reporter import Telemetry

log = logging.getLogger("docchat.request")


class RouteNames:
    """Maps a request path to its route template ("/api/documents/{document_id}"), so
    metrics have one series per route, not one per id."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self._routes = routes
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None

    def __call__(self, path: str) -> str:
        """The template of the route that serves `path`, or "unmatched"."""
        if self._compiled is None:  # routes are complete only once the app is built
            self._compiled = []
            for context in iter_route_contexts(self._routes):
                template = context.path or "/"
                if getattr(context.original_route, "routes", None) is not None:  # a mount
                    self._compiled.append((re.compile(re.escape(template) + "/.*"), template))
                else:
                    self._compiled.append((compile_path(template)[0], template))
        for pattern, template in self._compiled:
            if pattern.match(path):
                return template
        return "unmatched"


class RequestTelemetryMiddleware:
    """Gives every request an id (from X-Request-ID or new), returns it, logs the
    request once with its outcome, and records its metrics and span."""

    def __init__(self, app: ASGIApp, *, telemetry: Any, routes: RouteNames) -> None:
        self.app = app
        self.telemetry = telemetry  # a callable returning the Telemetry (set at start-up)
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        telemetry: Telemetry = self.telemetry()
        headers = dict(scope.get("headers", []))
        raw_id = headers.get(REQUEST_ID_HEADER.encode())
        context = RequestContext(request_id_from(raw_id.decode("latin-1") if raw_id else None))
        token = current.set(context)
        method, path = scope["method"], scope["path"]
        route = self.routes(path)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), context.request_id.encode()),
                ]
            await send(message)

        with telemetry.tracer.start_as_current_span(
            f"{method} {route}", kind=SpanKind.SERVER
        ) as span:
            span.set_attribute("http.request.method", method)
            span.set_attribute("http.route", route)
            span.set_attribute("docchat.request_id", context.request_id)
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                telemetry.request_done(route, method, status, seconds)
                self._log(method, path, route, status, seconds, context)
                current.reset(token)

    @staticmethod
    def _log(
        method: str, path: str, route: str, status: int, seconds: float, context: RequestContext
    ) -> None:
        """The one line for this request; an error's type and message ride on it."""
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        fields: dict[str, Any] = {
            "event": "request",
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
        }
        exc_info = context.error.pop("exc_info", None)
        if context.error:
            fields["error"] = context.error
        log.log(level, "%s %s %s", method, path, status, extra=fields, exc_info=exc_info)
