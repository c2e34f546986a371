"""Dependencies as typed aliases, so handlers read like signatures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from app.api.problems import ApiError, problem_from
from app.chat.service import ChatService
from app.components import Components
from app.security.keys import Identity, Scope
from app.security.keys import may_read as may_read
from app.settings import Settings
from app.store import audit

# Methods that change nothing: not recorded (a poll of a job's state would flood the trail).
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_components(request: Request) -> Components:
    """The components opened at start-up."""
    components: Components = request.app.state.components
    return components


def get_chat(request: Request) -> ChatService:
    """The chat service."""
    return get_components(request).chat


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return get_components(request).settings


def get_identity(request: Request) -> Identity | None:
    """The caller's key, as authenticated by the middleware (None with auth off)."""
    identity: Identity | None = getattr(request.state, "identity", None)
    return identity


def require_scope(needed: Scope) -> Any:
    """A router dependency: the caller's key must cover `needed` (when auth is on)."""

    def check(request: Request) -> None:
        if not get_settings(request).auth_enabled:
            return
        identity = get_identity(request)
        if identity is None:
            raise ApiError(401, "unauthorized", "a valid API key is required")
        if not identity.allows(needed):
            whose = "this key's scope" if identity.kind == "key" else "your groups"
            raise ApiError(403, "forbidden", f"{whose} does not allow {needed}")

    # Read by the route inventory test: every non-public route must declare a scope.
    marked: Callable[[Request], None] = check
    marked.required_scope = needed  # type: ignore[attr-defined]
    return Depends(marked)


def may_see_conversation(
    components: Components, identity: Identity | None, owner: str | None, collection: str | None
) -> bool:
    """Whether a caller may see a conversation: theirs (or an admin's look), and of a
    collection they may still read (a revoked reader loses its history with it)."""
    return may_read(identity, owner) and components.access.may_read(identity, collection)


def actor_of(identity: Identity | None) -> str:
    """Whom the audit trail records a caller as: `key:<id>` or `user:<id>`, typed, never
    a name."""
    return identity.actor if identity else audit.ANONYMOUS


def outcome_of(exc: BaseException) -> tuple[str, str]:
    """How a request that raised ended, for the trail: refused (4xx), or failed."""
    problem = problem_from(exc)  # ApiError and the domain errors the handlers map
    if problem is not None:
        outcome = "refused" if problem.status < 500 else "failed"
        return outcome, f"{problem.status} {problem.message}"
    if isinstance(exc, HTTPException):
        return ("refused" if exc.status_code < 500 else "failed"), f"{exc.status_code}"
    if isinstance(exc, RequestValidationError):
        return "refused", "422 invalid request"
    return "failed", type(exc).__name__


async def audit_admin(request: Request) -> AsyncIterator[audit.AdminAction]:
    """Around every admin handler (a router dependency after the scope check): the
    request runs as an admin action, and one event records it with its outcome unless
    the domain code recorded its own (app/store/audit.py). Reads are not recorded."""
    route = request.scope.get("route")
    action = audit.AdminAction(
        action=f"api.{getattr(route, 'name', 'unknown')}",
        actor=actor_of(get_identity(request)),
        target="/".join(str(v) for v in request.path_params.values()),
        detail={"route": f"{request.method} {getattr(route, 'path', request.url.path)}"},
    )
    if request.method in READ_METHODS:
        yield action
        return
    db = get_components(request).db
    # Set here, in the request's task: the handler (its thread, its tasks) inherits it.
    with audit.acting(action):
        try:
            yield action
        except Exception as exc:  # not a cancellation: the request is gone, nothing to wait on
            outcome, reason = outcome_of(exc)
            await asyncio.to_thread(audit.finish, db, action, outcome, reason)
            raise
    await asyncio.to_thread(audit.finish, db, action, "ok")


def admin_scope() -> list[Any]:
    """What every admin router declares: the admin scope, then the audit around each
    handler (function scope: it ends, and writes, before the response is sent)."""
    return [require_scope("admin"), Depends(audit_admin, scope="function")]


def feedback_name(identity: Identity | None) -> str:
    """Whom feedback is stored as: the key's name (never the key), `user:<id>` for a
    person (names are not unique, and a key's name has no colon); "" with auth off."""
    if identity is None:
        return ""
    return identity.name if identity.kind == "key" else identity.actor


def get_session(request: Request) -> Iterator[Session]:
    """A database session for one request: committed when the route returns, before the
    response is sent, and rolled back if it raises. Routes that take one are plain
    `def`s, so their blocking database work runs in the thread pool."""
    with get_components(request).db.session() as session:
        yield session


ComponentsDep = Annotated[Components, Depends(get_components)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ChatDep = Annotated[ChatService, Depends(get_chat)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
IdentityDep = Annotated[Identity | None, Depends(get_identity)]
