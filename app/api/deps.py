"""Dependencies as typed aliases, so handlers read like signatures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.chat.service import ChatService
from app.components import Components
from app.problems import ApiError
from app.security.keys import Identity, Scope
from app.security.keys import may_read as may_read
from app.settings import Settings


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
            raise ApiError(403, "forbidden", f"this key's scope does not allow {needed}")

    # Read by the route inventory test: every non-public route must declare a scope.
    marked: Callable[[Request], None] = check
    marked.required_scope = needed  # type: ignore[attr-defined]
    return Depends(marked)


def owner_of(identity: Identity | None) -> str | None:
    """What conversations started by this caller are tagged with."""
    return identity.key_id if identity else None


def feedback_name(identity: Identity | None) -> str:
    """Whom feedback is stored as: the key's name (never the key); "" with auth off."""
    return identity.name if identity else ""


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
