"""The page's sign-in routes: /auth/login sends the browser to the provider,
/auth/callback takes its answer and starts a session, /auth/session tells the page who
is signed in (and the CSRF token), /auth/logout ends it. Public paths: each reads the
session itself. The sign-in service (app/auth/service.py) does the work."""

from __future__ import annotations

import asyncio
import html
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from app.api.middleware import CSRF_HEADER, own_origin
from app.auth.errors import AuthRefused
from app.auth.service import SignInService
from app.settings import Settings
from common.errors import DocchatError

router = APIRouter(prefix="/auth", include_in_schema=False)
PENDING_COOKIE = "docchat_signin"
PENDING_MAX_AGE_S = 600


def cookie_names(settings: Settings) -> tuple[str, str]:
    """The session and pending-sign-in cookies' names: __Host- prefixed when Secure, so
    a browser refuses them unless set by this very host over HTTPS, for the whole site."""
    prefix = "__Host-" if settings.session_cookie_secure else ""
    return prefix + settings.oidc.cookie_name, prefix + PENDING_COOKIE


def _service(request: Request) -> SignInService | None:
    found: SignInService | None = getattr(request.app.state, "signin", None)
    return found


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.components.settings
    return settings


def _set_cookie(
    response: Response, settings: Settings, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=settings.session_cookie_secure,
        httponly=True,
        samesite=settings.oidc.cookie_samesite,
    )


def _clear_cookie(response: Response, settings: Settings, name: str) -> None:
    response.delete_cookie(
        name,
        path="/",
        secure=settings.session_cookie_secure,
        httponly=True,
        samesite=settings.oidc.cookie_samesite,
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def problem_page(status: int, title: str, message: str) -> HTMLResponse:
    """A plain page for a browser that lands on a refused step (no script: the CSP)."""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>docchat: {html.escape(title)}</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body class="signin-page"><main class="signin-problem">
<h1>{html.escape(title)}</h1>
<p id="signin-error" role="alert">{html.escape(message)}</p>
<p><a class="button primary" href="/auth/login">Sign in again</a>
<a href="/">Back to docchat</a></p>
</main></body></html>"""
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


@router.get("/session")
async def session_info(request: Request) -> JSONResponse:
    """Who is signed in on this browser, and the CSRF token the page sends with changes."""
    service = _service(request)
    if service is None:
        return JSONResponse({"oidc": False, "signed_in": False})
    settings = _settings(request)
    body: dict[str, Any] = {"oidc": True, "signed_in": False, "login_url": "/auth/login"}
    cookie = request.cookies.get(cookie_names(settings)[0])
    if cookie:
        try:
            identity, live = await asyncio.to_thread(service.session, cookie)
        except AuthRefused as exc:
            body["reason"] = str(exc)
        else:
            body.update(
                signed_in=True,
                user={"id": identity.id, "name": identity.name, "groups": sorted(identity.groups)},
                scope=identity.scope,
                csrf_token=live.csrf_token,
            )
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/login")
async def login(request: Request, return_to: str | None = None) -> Response:
    """Send the browser to the provider to sign in; back to `return_to` (a path here)."""
    service = _service(request)
    if service is None:
        return problem_page(404, "Sign-in is not configured", "This docchat uses API keys.")
    settings = _settings(request)
    try:
        cookie, url = await asyncio.to_thread(
            service.begin, return_to, str(request.base_url), _client(request)
        )
    except AuthRefused as exc:
        return problem_page(400, "Sign-in refused", str(exc))
    except DocchatError as exc:
        return problem_page(502, "The identity provider is unavailable", str(exc))
    response = RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    _set_cookie(response, settings, cookie_names(settings)[1], cookie, PENDING_MAX_AGE_S)
    return response


@router.get("/callback")
async def callback(request: Request) -> Response:
    """The provider's answer: check it, record the person, start a new session."""
    service = _service(request)
    if service is None:
        return problem_page(404, "Sign-in is not configured", "This docchat uses API keys.")
    settings = _settings(request)
    session_name, pending_name = cookie_names(settings)
    params = {
        k: v for k, v in request.query_params.items() if k in ("code", "state", "error", "iss")
    }
    try:
        done = await asyncio.to_thread(
            lambda: service.complete(
                pending_cookie=request.cookies.get(pending_name),
                session_cookie=request.cookies.get(session_name),
                params=params,
                base_url=str(request.base_url),
                client=_client(request),
            )
        )
    except AuthRefused as exc:
        response: Response = problem_page(400, "Sign-in refused", str(exc))
    except DocchatError as exc:
        response = problem_page(502, "The identity provider is unavailable", str(exc))
    else:
        response = RedirectResponse(done.return_to, status_code=303)
        max_age = int(settings.oidc.session_max_hours * 3600)
        _set_cookie(response, settings, session_name, done.cookie, max_age)
    _clear_cookie(response, settings, pending_name)
    return response


@router.post("/logout")
async def logout(request: Request) -> JSONResponse:
    """End this browser's session; the page then goes where `redirect` says (the
    provider's logout, which comes back here, where it offers one)."""
    service = _service(request)
    if service is None:
        return JSONResponse({"redirect": "/"})
    settings = _settings(request)
    session_name = cookie_names(settings)[0]
    cookie = request.cookies.get(session_name)
    if cookie:
        try:
            identity, live = await asyncio.to_thread(service.session, cookie)
            service.check_csrf(
                live,
                token=request.headers.get(CSRF_HEADER.decode()),
                origin=request.headers.get("origin"),
                site=request.headers.get("sec-fetch-site"),
                own_origin=own_origin(request.scope, settings.oidc.public_url),
            )
        except AuthRefused as exc:
            if exc.code == "csrf_failed":
                await asyncio.to_thread(
                    service.refused,
                    "auth.csrf",
                    exc,
                    actor=identity.actor,
                    detail={"route": "POST /auth/logout"},
                )
                return JSONResponse(
                    {"error": {"type": exc.code, "message": str(exc)}}, status_code=403
                )
    redirect = await asyncio.to_thread(service.logout, cookie, str(request.base_url))
    response = JSONResponse({"redirect": redirect}, headers={"Cache-Control": "no-store"})
    _clear_cookie(response, settings, session_name)
    return response
