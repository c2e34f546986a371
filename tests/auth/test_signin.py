"""Signing in on the page through the real OpenID provider (over HTTP, as a browser
follows the redirects), sessions, groups, logout, and docchat without sign-in."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from app.components import Components
from app.store.people import SignInSession
from tests.auth.conftest import COOKIE, audit_events, csrf, metric, sign_in
from tests.auth.provider import Provider


def test_without_oidc_the_page_asks_for_keys_as_before(client: TestClient) -> None:
    assert client.get("/auth/session").json() == {"oidc": False, "signed_in": False}
    assert client.get("/auth/login").status_code == 404
    assert client.get("/v1/models").status_code == 200  # development: no login at all


def test_sign_in_records_the_person_with_groups_and_starts_a_session(
    app_client: TestClient, provider: Provider, components: Components
) -> None:
    assert app_client.get("/auth/session").json() == {
        "oidc": True,
        "signed_in": False,
        "login_url": "/auth/login",
    }
    assert app_client.get("/v1/models").status_code == 401
    before = metric(app_client, "docchat_signins_total", "outcome", "ok")

    done = sign_in(app_client, provider, "alice", return_to="/sources/abc?x=1#chunk-2")
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/sources/abc?x=1#chunk-2"
    cookie = done.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    value = app_client.cookies[COOKIE]
    assert "alice" not in value
    assert value.count(".") == 1

    info = app_client.get("/auth/session").json()
    assert info["signed_in"]
    assert info["scope"] == "chat"
    assert info["user"]["name"] == "Alice Support"
    assert info["user"]["groups"] == ["support"]
    assert len(info["csrf_token"]) >= 32
    assert app_client.get("/v1/models").status_code == 200
    assert app_client.get("/api/admin/keys").status_code == 403  # not an admin group

    events = audit_events(components, "auth.signin")
    mine = [
        e for e in events if e["outcome"] == "ok" and e["actor"] == f"user:{info['user']['id']}"
    ]
    assert mine
    assert mine[0]["detail"]["groups"] == ["support"]
    assert metric(app_client, "docchat_signins_total", "outcome", "ok") == before + 1
    # Only the hash of the session id is stored.
    session_id = value.split(".")[0]
    with components.db.session() as session:
        stored = {row.id_hash for row in session.query(SignInSession)}
    assert hashlib.sha256(session_id.encode()).hexdigest() in stored
    assert session_id not in stored


def test_groups_come_from_the_provider_at_every_sign_in(
    app_client: TestClient, provider: Provider
) -> None:
    provider.set_groups("alice", ["support", "docchat-admins"])
    try:
        assert sign_in(app_client, provider, "alice").status_code == 303
        info = app_client.get("/auth/session").json()
        assert info["user"]["groups"] == ["docchat-admins", "support"]
        assert info["scope"] == "admin"
        assert app_client.get("/api/admin/keys").status_code == 200
    finally:
        provider.set_groups("alice", ["support"])
    # Removed at the provider: gone at the next sign-in.
    assert sign_in(app_client, provider, "alice").status_code == 303
    info = app_client.get("/auth/session").json()
    assert info["user"]["groups"] == ["support"]
    assert info["scope"] == "chat"
    assert app_client.get("/api/admin/keys").status_code == 403


def test_logout_ends_the_session_and_goes_to_the_providers_logout(
    app_client: TestClient, provider: Provider, components: Components
) -> None:
    sign_in(app_client, provider, "bob")
    old = app_client.cookies[COOKIE]
    headers = csrf(app_client)
    # Logging out is a change too: without the token it is refused.
    refused = app_client.post("/auth/logout", headers={"Origin": "http://testserver"})
    assert refused.status_code == 403
    out = app_client.post("/auth/logout", headers=headers)
    assert out.status_code == 200, out.text
    target = urlsplit(out.json()["redirect"])
    assert f"{target.scheme}://{target.netloc}" == provider.issuer
    assert target.path == "/session/end"
    query = parse_qs(target.query)
    assert query["client_id"] == ["docchat"]
    assert query["post_logout_redirect_uri"] == ["http://testserver/"]
    assert f'{COOKIE}=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    # The old cookie, sent again, opens nothing.
    app_client.cookies.set(COOKIE, old)
    assert app_client.get("/v1/models").status_code == 401
    assert app_client.get("/auth/session").json()["signed_in"] is False
    assert audit_events(components, "auth.signout")
