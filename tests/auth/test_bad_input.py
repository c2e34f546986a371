"""What an attacker (or a confused browser) sends to the page's sign-in and sessions:
each is refused with a clear error and audited, and nothing else is affected."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient

from app.auth.users import UserStore
from app.components import Components
from app.main import create_app
from app.settings import Settings
from tests.auth.conftest import (
    COOKIE,
    PENDING,
    TEST_ORIGIN,
    audit_events,
    csrf,
    provider_answer,
    sign_in,
)
from tests.auth.provider import Provider
from tests.conftest import run_docchat


def last_refusal(components: Components, action: str) -> dict[str, object]:
    event = audit_events(components, action)[0]
    assert event["outcome"] == "refused", event
    return event


def test_a_state_that_is_not_this_sign_ins_is_refused(
    app_client: TestClient, provider: Provider, components: Components
) -> None:
    answer = provider_answer(app_client, provider, "alice")
    parts = urlsplit(answer)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["state"] = "not-the-state-docchat-sent"
    response = app_client.get(f"{parts.path}?{urlencode(query)}")
    assert response.status_code == 400
    assert "not for this sign-in" in response.text
    assert COOKIE not in response.cookies
    assert str(last_refusal(components, "auth.signin")["reason"]).startswith("state_mismatch")
    # The pending sign-in is used up: the genuine answer, sent after, is refused too.
    assert app_client.get(answer).status_code == 400


def test_a_callback_without_a_sign_in_started_in_this_browser_is_refused(
    app_client: TestClient, provider: Provider, components: Components
) -> None:
    answer = provider_answer(app_client, provider, "alice")
    app_client.cookies.delete(PENDING)  # e.g. a link sent to a victim (login CSRF)
    response = app_client.get(answer)
    assert response.status_code == 400
    assert "no sign-in was started" in response.text
    assert str(last_refusal(components, "auth.signin")["reason"]).startswith("signin_not_started")


def test_a_replayed_code_is_refused(
    app_client: TestClient, provider: Provider, components: Components
) -> None:
    answer = provider_answer(app_client, provider, "alice")
    pending = app_client.cookies[PENDING]
    first = app_client.get(answer)
    assert first.status_code == 303
    # The same answer again, with the pending sign-in's cookie put back.
    app_client.cookies.set(PENDING, pending)
    again = app_client.get(answer)
    assert again.status_code == 400
    assert "already completed" in again.text
    assert str(last_refusal(components, "auth.signin")["reason"]).startswith("signin_replayed")
    # The used code under a fresh sign-in's state: the provider refuses it (PKCE and
    # single use), and so does docchat.
    app_client.get("/auth/login")
    fresh_state = parse_qs(urlsplit(provider_answer(app_client, provider, "alice")).query)["state"][
        0
    ]
    code = parse_qs(urlsplit(answer).query)["code"][0]
    replay = app_client.get("/auth/callback?" + urlencode({"code": code, "state": fresh_state}))
    assert replay.status_code == 400
    assert "would not exchange the code" in replay.text
    assert str(last_refusal(components, "auth.signin")["reason"]).startswith("code_refused")


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/ok\r\nSet-Cookie: x=y",
    ],
)
def test_the_return_url_must_be_a_path_on_this_site(
    app_client: TestClient, components: Components, target: str
) -> None:
    response = app_client.get("/auth/login", params={"return_to": target})
    assert response.status_code == 400
    assert "must be a path on this site" in response.text
    assert "location" not in response.headers
    assert str(last_refusal(components, "auth.signin")["reason"]).startswith("bad_return_to")


def test_signing_in_gives_a_new_session_id_whatever_the_browser_held(
    app_client: TestClient, provider: Provider, components: Components
) -> None:
    sign_in(app_client, provider, "alice")
    first = app_client.cookies[COOKIE]
    sign_in(app_client, provider, "alice")  # the browser still sends the first cookie
    second = app_client.cookies[COOKIE]
    assert second != first
    app_client.cookies.set(COOKIE, first)
    assert app_client.get("/v1/models").status_code == 401  # the old one ended
    # A session id an attacker made up (and planted) is never one docchat issued.
    app_client.cookies.set(COOKIE, "attacker-chosen-id.c2lnbmF0dXJl")
    refused = app_client.get("/v1/models")
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "session_forged"
    assert str(last_refusal(components, "auth.session")["reason"]).startswith("session_forged")
    app_client.cookies.set(COOKIE, second)
    assert app_client.get("/v1/models").status_code == 200


def test_a_cross_site_post_with_the_session_cookie_is_refused(
    app_client: TestClient, provider: Provider, components: Components
) -> None:
    sign_in(app_client, provider, "alice")
    good = csrf(app_client)
    question = {"question": "What port does the widget server use?", "stream": False}
    attempts = [
        {},  # a form or fetch from another site cannot read the token
        {"X-CSRF-Token": "guessed"},
        {**good, "Origin": "https://evil.example"},
        {**good, "Sec-Fetch-Site": "cross-site"},
    ]
    for headers in attempts:
        response = app_client.post("/api/chat", json=question, headers=headers)
        assert response.status_code == 403, headers
        assert response.json()["error"]["type"] == "csrf_failed"
        event = last_refusal(components, "auth.csrf")
        assert event["detail"] == {"route": "POST /api/chat"}
        assert str(event["actor"]).startswith("user:")
    feedback = app_client.post("/api/messages/whatever/feedback", json={"rating": "up"})
    assert feedback.status_code == 403
    # Reads need no token; the page's own request goes through.
    assert app_client.get("/v1/models").status_code == 200
    answered = app_client.post("/api/chat", json=question, headers=good)
    assert answered.status_code == 200, answered.text
    body = answered.json()
    # Feedback with the token: the person's own answer.
    rated = app_client.post(
        f"/api/messages/{body['message_id']}/feedback", json={"rating": "up"}, headers=good
    )
    assert rated.status_code == 200, rated.text
    mine = app_client.get(f"/api/conversations/{body['conversation_id']}")
    assert mine.status_code == 200
    # Someone else, not an admin, cannot read alice's conversation.
    provider.set_groups("bob", ["sales"])
    try:
        with TestClient(app_client.app, follow_redirects=False) as other:
            sign_in(other, provider, "bob")
            assert other.get(f"/api/conversations/{body['conversation_id']}").status_code == 404
    finally:
        provider.set_groups("bob", ["sales", "docchat-admins"])


def test_a_disabled_persons_session_and_tokens_stop_at_once(
    app_client: TestClient, provider: Provider, components: Components
) -> None:
    sign_in(app_client, provider, "alice")
    token = provider.tool_token("alice")
    assert app_client.get("/v1/models").status_code == 200
    users = UserStore(components.db)
    users.disable("alice", actor="cli")
    try:
        response = app_client.get("/v1/models")
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "user_disabled"
        event = last_refusal(components, "auth.session")
        assert str(event["reason"]).startswith("user_disabled")
        assert str(event["actor"]).startswith("user:")
        denied = app_client.get("/v1/models", headers={"Authorization": f"Bearer {token}"})
        assert denied.json()["error"]["type"] == "user_disabled"
        again = sign_in(app_client, provider, "alice")
        assert again.status_code == 400
        assert "disabled" in again.text
    finally:
        users.enable("alice", actor="cli")
    # Enabled again: the old session stays ended; a new sign-in works.
    assert app_client.get("/v1/models").status_code == 401
    assert sign_in(app_client, provider, "alice").status_code == 303
    assert app_client.get("/v1/models").status_code == 200


def test_the_cookie_is_secure_and_host_bound_outside_development(
    components: Components, signin_settings: Settings, provider: Provider
) -> None:
    settings = signin_settings.model_copy(
        update={"oidc": signin_settings.oidc.model_copy(update={"cookie_secure": None})}
    )
    assert settings.env == "test"
    assert settings.session_cookie_secure
    with TestClient(create_app(settings, components), follow_redirects=False) as client:
        start = client.get("/auth/login")
        cookie = start.headers["set-cookie"]
        assert cookie.startswith("__Host-docchat_signin=")
        assert "Secure" in cookie
        assert "HttpOnly" in cookie
        assert "Path=/" in cookie
        assert "Domain" not in cookie
        assert "SameSite=lax" in cookie


def test_users_commands_list_disable_and_enable_audited(
    components: Components, provider: Provider, app_client: TestClient
) -> None:
    sign_in(app_client, provider, "bob")
    settings = components.settings
    env = {
        **os.environ,
        "DOCCHAT_DATA_DIR": str(settings.data_dir),
        "DOCCHAT_SECRETS_DIR": str(Path(settings.data_dir) / "no-secrets"),
    }
    listed = run_docchat("users", "list", "--json", env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    bob = next(p for p in json.loads(listed.stdout) if p["username"] == "bob")
    assert bob["groups"] == ["docchat-admins", "sales"]
    assert bob["state"] == "active"
    assert run_docchat("users", "disable", "bob@example.com", env=env).returncode == 0
    assert app_client.get("/v1/models").status_code == 401  # at once
    event = audit_events(components, "user.disable")[0]
    assert event["target"] == f"user:{bob['id']}"
    assert str(event["actor"]).startswith("cli:")
    assert event["detail"]["sessions_ended"] >= 1
    assert run_docchat("users", "enable", bob["id"], env=env).returncode == 0
    assert audit_events(components, "user.enable")[0]["target"] == f"user:{bob['id']}"
    missing = run_docchat("users", "disable", "nobody", env=env)
    assert missing.returncode == 1
    assert "no user 'nobody'" in missing.stderr
    assert last_refusal(components, "user.disable")["target"] == "nobody"


__all__ = ["TEST_ORIGIN"]
