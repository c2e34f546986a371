"""Fixtures for sign-in: the real OpenID provider, the app configured for it, and a
person signed in through the provider's login form (as a browser does it, over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from app.components import Components
from app.main import create_app
from app.settings import Settings
from tests.auth.provider import Provider, free_port, running_provider

TEST_ORIGIN = "http://testserver"
COOKIE = "docchat_session"
PENDING = "docchat_signin"


@dataclass(frozen=True)
class Ports:
    """Loopback ports chosen before anything starts: the provider must know the live
    server's callback, and the app the provider's issuer."""

    provider: int
    live: int


@pytest.fixture(scope="session")
def ports() -> Ports:
    return Ports(free_port(), free_port())


def oidc_settings(settings: Settings, issuer: str, **oidc: object) -> Settings:
    """The corpus settings with sign-in configured for the test provider."""
    values: dict[str, object] = {
        "issuer": issuer,
        "client_id": "docchat",
        "client_secret": "docchat-secret",
        "scopes": ["openid", "profile", "email", "groups"],
        "admin_groups": ["docchat-admins"],
        "audiences": ["urn:docchat:api"],
        # Plain HTTP on loopback (TestClient and the live server): a Secure cookie would
        # never be sent back; tests/auth/test_cookies.py checks the Secure form.
        "cookie_secure": False,
        # Expired means expired: the short-lived tokens' test waits seconds, not minutes.
        "clock_skew_s": 0,
        "jwks_min_refresh_s": 0,
        **oidc,
    }
    return settings.model_copy(
        update={
            "oidc": settings.oidc.model_validate(values),
            "security": settings.security.model_copy(update={"auth_enabled": None}),
        }
    )


@pytest.fixture(scope="session")
def provider(tmp_path_factory: pytest.TempPathFactory, ports: Ports) -> Iterator[Provider]:
    folder = tmp_path_factory.mktemp("oidc")
    live = f"http://127.0.0.1:{ports.live}"
    yield from running_provider(
        folder,
        [f"{TEST_ORIGIN}/auth/callback", f"{live}/auth/callback"],
        [f"{TEST_ORIGIN}/", f"{live}/"],
        port=ports.provider,  # the port the app's settings already name
    )


@pytest.fixture(scope="session")
def signin_settings(components: Components, ports: Ports) -> Settings:
    return oidc_settings(components.settings, f"http://127.0.0.1:{ports.provider}")


@pytest.fixture
def app_client(
    components: Components, signin_settings: Settings, provider: Provider
) -> Iterator[TestClient]:
    """The real app with sign-in configured; redirects are not followed (they lead to
    the provider, which the test follows itself)."""
    app = create_app(signin_settings, components)
    with TestClient(app, follow_redirects=False) as client:
        yield client


def sign_in(
    client: TestClient, provider: Provider, user: str, return_to: str | None = None
) -> httpx.Response:
    """Sign `user` in through the provider's login form; the callback's response."""
    params = {"return_to": return_to} if return_to else {}
    start = client.get("/auth/login", params=params)
    assert start.status_code == 302, start.text
    with httpx.Client(timeout=15) as browser:
        back = provider.sign_in(browser, start.headers["location"], user)
    assert back.is_redirect, back.text[:500]
    location = back.headers["location"]
    assert location.startswith(TEST_ORIGIN + "/auth/callback?"), location
    parts = urlsplit(location)
    return client.get(f"{parts.path}?{parts.query}")


def provider_answer(client: TestClient, provider: Provider, user: str) -> str:
    """Start a sign-in and go through the provider, but stop before the callback: the
    callback path and query the provider sent the browser to."""
    start = client.get("/auth/login")
    with httpx.Client(timeout=15) as browser:
        back = provider.sign_in(browser, start.headers["location"], user)
    parts = urlsplit(back.headers["location"])
    return f"{parts.path}?{parts.query}"


def csrf(client: TestClient) -> dict[str, str]:
    """The headers the page sends with a change: its CSRF token, its own origin."""
    info = client.get("/auth/session").json()
    assert info["signed_in"], info
    return {"X-CSRF-Token": info["csrf_token"], "Origin": TEST_ORIGIN}


def audit_events(components: Components, action: str) -> list[dict[str, object]]:
    from app.store import audit

    with components.db.session() as session:
        return [audit.as_dict(e) for e in audit.events(session, action=action, limit=50)]


def metric(client: TestClient, name: str, label: str, value: str) -> float:
    """A counter's value from /metrics (0 if the series is absent)."""
    text = client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(f'{name}{{{label}="{value}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


__all__ = ["COOKIE", "PENDING", "Path"]
