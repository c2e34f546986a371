"""Sessions end when they should (idle, at their absolute end), keys keep working beside
sign-in, a provider that is down is said so, and production refuses sign-in without
HTTPS."""

from __future__ import annotations

import secrets
from datetime import timedelta

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import update

from app.components import Components
from app.main import create_app
from app.security.secrets import startup_problems
from app.settings import Settings
from app.store.models import utcnow
from app.store.people import SignInSession
from tests.auth.conftest import COOKIE, oidc_settings, sign_in
from tests.auth.provider import Provider


def _age_session(components: Components, **values: object) -> None:
    with components.db.session() as session:
        session.execute(
            update(SignInSession).where(SignInSession.ended_at.is_(None)).values(**values)
        )


def test_an_idle_session_ends_and_an_active_one_is_renewed(
    app_client: TestClient, provider: Provider, components: Components
) -> None:
    sign_in(app_client, provider, "alice")
    _age_session(components, last_seen_at=utcnow() - timedelta(minutes=5))
    assert app_client.get("/v1/models").status_code == 200  # renewed now
    with components.db.session() as session:
        seen = max(r.last_seen_at for r in session.query(SignInSession))
    assert utcnow() - seen < timedelta(minutes=1)
    _age_session(components, last_seen_at=utcnow() - timedelta(minutes=61))
    response = app_client.get("/v1/models")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "session_over"


def test_a_session_ends_at_its_absolute_end_however_active(
    app_client: TestClient, provider: Provider, components: Components
) -> None:
    sign_in(app_client, provider, "alice")
    assert app_client.get("/v1/models").status_code == 200
    _age_session(components, expires_at=utcnow() - timedelta(seconds=1))
    assert app_client.get("/v1/models").status_code == 401
    assert app_client.get("/auth/session").json()["signed_in"] is False


def test_api_keys_work_beside_sign_in(app_client: TestClient, keys: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {keys['chat']}"}
    assert app_client.get("/v1/models", headers=headers).status_code == 200
    wrong = app_client.get(
        "/v1/models", headers={"Authorization": "Bearer dck_000000000000_" + "x" * 43}
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["type"] == "unauthorized"
    # A key beats a session cookie: the key's scope, not the person's, applies.
    app_client.cookies.set(COOKIE, "whatever.c2ln")
    assert app_client.get("/v1/models", headers=headers).status_code == 200


def test_a_provider_that_is_down_is_said_so(
    components: Components, signin_settings: Settings, provider: Provider
) -> None:
    token = provider.tool_token("alice")
    from tests.auth.provider import free_port

    nowhere = oidc_settings(components.settings, f"http://127.0.0.1:{free_port()}")
    with TestClient(create_app(nowhere, components), follow_redirects=False) as client:
        response = client.get("/v1/models", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "identity_provider_failed"
        page = client.get("/auth/login")
        assert page.status_code == 502
        assert "identity provider is unavailable" in page.text


def test_production_refuses_sign_in_without_https(signin_settings: Settings) -> None:
    production = signin_settings.model_copy(update={"env": "production"})
    problems = "\n".join(startup_problems(production))
    assert "oidc.issuer must be an https:// URL" in problems
    assert "oidc.public_url is required" in problems
    assert "oidc.cookie_secure is off" in problems
    assert "oidc.client_secret is shorter than 16 characters" in problems  # judged as a token
    fixed = production.model_copy(
        update={
            "oidc": production.oidc.model_copy(
                update={
                    "issuer": "https://login.example.com/realms/staff",
                    "public_url": "https://docs.example.com",
                    "cookie_secure": None,
                    "client_secret": SecretStr(secrets.token_urlsafe(32)),
                }
            )
        }
    )
    assert not [p for p in startup_problems(fixed) if "oidc" in p]


def test_sign_in_starts_are_rate_limited_per_address(
    components: Components, signin_settings: Settings, provider: Provider
) -> None:
    limited = signin_settings.model_copy(
        update={
            "security": signin_settings.security.model_copy(update={"rate_limit_per_minute": 2})
        }
    )
    with TestClient(create_app(limited, components), follow_redirects=False) as client:
        assert [client.get("/auth/login").status_code for _ in range(3)] == [302, 302, 429]
        # What every page load asks is not counted against the address.
        assert {client.get("/auth/session").status_code for _ in range(5)} == {200}
