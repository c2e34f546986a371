"""ASGI middleware, outermost first: security headers, body size cap, authentication
and rate limit. Pure ASGI, so streamed answers pass through untouched."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import error_body
from app.auth.errors import AuthRefused, ProviderUnavailable
from app.auth.service import SignInService
from app.security.keys import Identity, KeyStore
from app.security.limits import RateLimiter
from app.telemetry.context import annotate

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]

# Reachable without a key: probes, the static shell of the chat page, which holds no
# data (it asks for a key or a sign-in and fetches everything through the API), and the
# sign-in routes (which read the session themselves).
# The pages themselves hold no data (the console's figures are admin routes, the owners'
# page's are the owners' routes).
PUBLIC_EXACT = frozenset({"/healthz", "/readyz", "/", "/admin", "/collections", "/favicon.ico"})
SIGNIN_START = "/auth/login"
PUBLIC_PREFIXES = ("/static/", "/sources/", "/auth/")
# Methods that change nothing: a cookie-authenticated request with another method must
# carry the session's CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = b"x-csrf-token"


def is_public(path: str, extra: frozenset[str] = frozenset()) -> bool:
    """Whether a path needs no key."""
    return path in PUBLIC_EXACT or path in extra or path.startswith(PUBLIC_PREFIXES)


async def send_error(
    send: Send, status: int, type_: str, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """A JSON error in the app's one error shape (noted on the request for its log line)."""
    body = json.dumps(error_body(type_, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def hsts_header(max_age_s: int) -> list[tuple[bytes, bytes]]:
    """Strict-Transport-Security for `max_age_s` seconds (none for 0). Without
    includeSubDomains: docchat cannot know that every sibling host speaks HTTPS."""
    return [(b"strict-transport-security", b"max-age=%d" % max_age_s)] if max_age_s else []


class SecurityHeadersMiddleware:
    """Adds CSP and the usual hardening headers to every response, and `extra` ones
    (HSTS in production)."""

    def __init__(self, app: ASGIApp, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        self.app = app
        self.headers = [*SECURITY_HEADERS, *(extra or [])]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, with_headers)


class _BodyTooLarge(BaseException):
    """Not an Exception: FastAPI turns any Exception raised while it reads a body into
    a 400, and this must reach the middleware to become a 413."""


class BodySizeLimitMiddleware:
    """413 for a body over the limit: at once from Content-Length, or as soon as a
    streamed body passes it, so an oversized body is never read in full."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        limits_by_path: dict[str, int],
        limits_by_pattern: list[tuple[re.Pattern[str], int]] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.limits_by_path = limits_by_path
        # Paths with a parameter (an owner's upload into /api/collections/{name}/...).
        self.limits_by_pattern = limits_by_pattern or []

    def limit_of(self, path: str) -> int:
        if path in self.limits_by_path:
            return self.limits_by_path[path]
        return next((n for p, n in self.limits_by_pattern if p.fullmatch(path)), self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope["path"])
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await send_error(send, 413, "body_too_large", f"request body over {limit} bytes")
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await send_error(send, 413, "body_too_large", f"request body over {limit} bytes")


def _credential(scope: Scope) -> str | None:
    """The key from `Authorization: Bearer …` or `X-API-Key: …`."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, raw in headers:
        value = raw.decode("latin-1").strip()
        if name == b"authorization":
            kind, _, token = value.partition(" ")
            if kind.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value:
            return value
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, raw in headers:
        if key == name:
            return raw.decode("latin-1")
    return None


def cookie_value(scope: Scope, name: str) -> str | None:
    """One cookie's value from the Cookie headers (the last one sent wins nothing: the
    first is taken, as browsers send the most specific first)."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, raw in headers:
        if key != b"cookie":
            continue
        for part in raw.decode("latin-1").split(";"):
            found, _, value = part.strip().partition("=")
            if found == name and value:
                return value
    return None


def own_origin(scope: Scope, public_url: str | None) -> str:
    """This site's origin as a browser names it: the configured public URL, else the
    scheme and Host of the request."""
    if public_url:
        parts = public_url.split("/")
        return "/".join(parts[:3])
    return f"{scope.get('scheme', 'http')}://{_header(scope, b'host') or ''}"


def looks_like_jwt(credential: str) -> bool:
    """A JWS in compact form (three dot-separated parts), not an API key."""
    return not credential.startswith("dck_") and credential.count(".") == 2


def _client_address(scope: Scope) -> str:
    """The peer's address (a proxy's, unless uvicorn trusts its forwarded headers)."""
    client = scope.get("client") or ("unknown", 0)
    return str(client[0])


_CHALLENGE = ((b"www-authenticate", b"Bearer"),)


async def _too_many(send: Send, retry_after: int, message: str) -> None:
    await send_error(
        send,
        429,
        "rate_limited",
        f"{message}; retry in {retry_after} s",
        ((b"retry-after", str(retry_after).encode()),),
    )


class AuthMiddleware:
    """Authenticates every non-public request and applies the per-caller rate limit.

    Deny by default: a route added later needs a key unless it is listed as public.
    What a caller may do (its scope) is checked by each router's dependency.

    With sign-in configured, a caller is also a person: by a bearer JWT from the
    provider (told from an API key by its shape), or, with no credential header, by the
    page's session cookie, whose changes (any method but GET, HEAD, OPTIONS) must carry
    the session's CSRF token and come from no other origin.

    Wrong keys are limited per client address by `failures`: an address over that
    budget is refused with 429 before its key is hashed or looked up, whatever the key,
    since telling a valid key from a guess is the very work being saved.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        enabled: bool,
        keys: Callable[[], KeyStore],
        limiter: RateLimiter,
        failures: RateLimiter | None = None,
        public_extra: frozenset[str] = frozenset(),
        signin: Callable[[], SignInService | None] = lambda: None,
        cookie_name: str = "",
        public_url: str | None = None,
    ) -> None:
        self.app = app
        self.enabled = enabled
        self.keys = keys
        self.signin = signin
        self.cookie_name = cookie_name
        self.public_url = public_url
        self.limiter = limiter
        self.failures = failures or RateLimiter(0)
        self.public_extra = public_extra

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"], self.public_extra):
            if scope["type"] == "http" and scope["path"] == SIGNIN_START:
                # Each sign-in start writes a row: limited per address like any anonymous
                # caller, though the route is public. (Not /auth/session, which every
                # page load asks: a company behind one proxy address would share it.)
                retry_after = self.limiter.hit(f"addr:{_client_address(scope)}")
                if retry_after:
                    await _too_many(send, retry_after, "too many requests")
                    return
            await self.app(scope, receive, send)
            return
        identity: Identity | None = None
        address = _client_address(scope)
        if self.enabled:
            blocked = self.failures.retry_after(address)
            if blocked:
                await _too_many(send, blocked, "too many failed authentications from this address")
                return
            signin = self.signin()
            key = _credential(scope)
            try:
                if key is not None and signin is not None and looks_like_jwt(key):
                    identity = await asyncio.to_thread(signin.bearer, key)
                elif key is not None:
                    identity = await asyncio.to_thread(self.keys().authenticate, key)
                    if identity is None:
                        self.failures.hit(address)
                elif signin is not None:
                    cookie = cookie_value(scope, self.cookie_name)
                    if cookie is not None:
                        identity = await self._session(scope, signin, cookie)
            except ProviderUnavailable as exc:
                # The provider's keys could not be read: not the caller's fault.
                await send_error(send, 503, exc.code, str(exc))
                return
            except AuthRefused as exc:
                if exc.code not in ("session_over", "session_missing"):
                    self.failures.hit(address)
                status, challenge = (403, ()) if exc.code == "csrf_failed" else (401, _CHALLENGE)
                await send_error(send, status, exc.code, str(exc), challenge)
                return
            if identity is None:
                # One answer for missing, wrong, expired and revoked keys alike.
                await send_error(
                    send,
                    401,
                    "unauthorized",
                    "sign in, or send a valid API key or bearer token"
                    if signin is not None
                    else "a valid API key is required",
                    _CHALLENGE,
                )
                return
        caller = identity.actor if identity else f"addr:{address}"
        retry_after = self.limiter.hit(caller)
        if retry_after:
            await _too_many(send, retry_after, "too many requests")
            return
        scope.setdefault("state", {})["identity"] = identity
        if identity is not None:
            # A person is logged by docchat's id, never by their name.
            annotate(key_name=identity.name if identity.kind == "key" else identity.actor)
        await self.app(scope, receive, send)

    async def _session(self, scope: Scope, signin: SignInService, cookie: str) -> Identity:
        """The person a session cookie stands for; a change must also come from this
        site's page (the CSRF token, and no other origin). AuthRefused otherwise."""
        identity, live = await asyncio.to_thread(signin.session, cookie)
        if scope["method"] not in SAFE_METHODS:
            try:
                signin.check_csrf(
                    live,
                    token=_header(scope, CSRF_HEADER),
                    origin=_header(scope, b"origin"),
                    site=_header(scope, b"sec-fetch-site"),
                    own_origin=own_origin(scope, self.public_url),
                )
            except AuthRefused as exc:
                detail = {"route": f"{scope['method']} {scope['path']}"}
                raise await asyncio.to_thread(
                    signin.refused, "auth.csrf", exc, actor=identity.actor, detail=detail
                ) from None
        return identity
