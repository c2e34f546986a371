"""Authentication and scopes on the running app, including the route inventory."""

from __future__ import annotations

import re
from collections.abc import Iterator

import openai
import pytest
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount

from app.api.middleware import is_public
from app.components import Components
from app.main import create_app
from app.security.keys import SCOPE_LEVEL
from tests.conftest import bearer, with_auth

QUESTION = "What port does the widget server listen on by default?"
UNAUTHORIZED = {
    "error": {
        "type": "unauthorized",
        "message": "a valid API key is required",
        "param": None,
        "code": "unauthorized",
    }
}


@pytest.fixture
def auth_client(components: Components) -> Iterator[TestClient]:
    settings = with_auth(components.settings)
    # /metrics open to scrapers is the default; here it is a protected route like others.
    telemetry = settings.telemetry.model_copy(update={"metrics_require_key": True})
    app = create_app(settings.model_copy(update={"telemetry": telemetry}), components)
    with TestClient(app) as client:
        yield client


def unauthorized(response: object) -> None:
    """The one 401 answer: same body for every cause, with the request's id."""
    assert response.status_code == 401  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["error"].pop("request_id") == response.headers["x-request-id"]  # type: ignore[attr-defined]
    assert body == UNAUTHORIZED


def api_routes(client: TestClient) -> list[RouteContext]:
    """Every effective route (FastAPI keeps included routers nested)."""
    contexts = list(iter_route_contexts(client.app.routes))  # type: ignore[attr-defined]
    assert len(contexts) >= 12
    return contexts


def required_scope(route: RouteContext) -> str | None:
    assert route.dependant is not None
    for dependency in route.dependant.dependencies:
        scope = getattr(dependency.call, "required_scope", None)
        if scope:
            return str(scope)
    return None


def test_every_route_is_public_or_scoped(auth_client: TestClient) -> None:
    """The inventory: a route added without protection fails here."""
    for route in api_routes(auth_client):
        if isinstance(route.original_route, Mount):
            assert is_public(route.path + "/"), route.path
            continue
        if not isinstance(route.original_route, APIRoute):
            assert route.path == "/openapi.json"  # served outside production only
            continue
        if is_public(re.sub(r"\{[^}]+\}", "x", route.path)):
            # The sign-in routes read (and check) the session themselves.
            assert route.path in (
                "/",
                "/admin",
                "/collections",
                "/healthz",
                "/readyz",
                "/sources/{document_id}",
                "/auth/session",
                "/auth/login",
                "/auth/callback",
                "/auth/logout",
            ), route.path
            continue
        assert required_scope(route) in SCOPE_LEVEL, f"{route.path} declares no scope"


# Bodies that pass validation but start nothing: `{}` would start a real reindex of the
# session's shared collection (into int8 where embedding.backend is auto, which its fp32
# test server would then refuse).
QUIET_BODIES: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/api/admin/reindex"): {"action": "abort"},
}


def test_every_route_refuses_missing_and_wrong_keys(
    auth_client: TestClient, keys: dict[str, str]
) -> None:
    """Walk every route with no key, a bad key and each scope's key."""
    checked = 0
    for route in api_routes(auth_client):
        if not isinstance(route.original_route, APIRoute):
            continue
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        if is_public(path):
            continue
        needed = required_scope(route)
        assert needed is not None
        for method in route.methods:
            for headers in ({}, bearer("dck_000000000000_" + "x" * 43), {"X-API-Key": "nope"}):
                # A malformed body must not get past authentication either.
                response = auth_client.request(method, path, headers=headers, content=b"{bad")
                unauthorized(response)
                assert response.headers["www-authenticate"] == "Bearer"
            for scope, key in keys.items():
                body = QUIET_BODIES.get((method, path), {})
                response = auth_client.request(method, path, headers=bearer(key), json=body)
                if SCOPE_LEVEL[scope] < SCOPE_LEVEL[needed]:
                    assert response.status_code == 403, (method, path, scope)
                    assert response.json()["error"]["type"] == "forbidden"
                else:
                    assert response.status_code not in (401, 403), (method, path, scope)
            checked += 1
    assert checked >= 8


def test_public_routes_need_no_key(auth_client: TestClient) -> None:
    assert auth_client.get("/healthz").status_code == 200
    assert auth_client.get("/readyz").status_code == 200
    assert auth_client.get("/").status_code == 200
    assert auth_client.get("/static/chat.js").status_code == 200
    assert auth_client.get("/sources/abc").status_code == 200
    # The console page asks for a key itself; its figures are admin routes.
    console = auth_client.get("/admin")
    assert console.status_code == 200
    assert 'id="key-form"' in console.text
    assert auth_client.get("/api/admin/health").status_code == 401
    # The owners' page too: its lists are the owners' routes, behind a key or sign-in.
    owners = auth_client.get("/collections")
    assert owners.status_code == 200
    assert 'id="key-form"' in owners.text
    assert auth_client.get("/api/collections/docs/runs").status_code == 401


def test_chat_with_bearer_and_x_api_key(auth_client: TestClient, keys: dict[str, str]) -> None:
    for headers in (bearer(keys["chat"]), {"X-API-Key": keys["chat"]}):
        response = auth_client.post(
            "/api/chat", json={"question": QUESTION, "stream": False}, headers=headers
        )
        assert response.status_code == 200
        assert "7421" in response.json()["answer"]


def test_revocation_takes_effect_on_the_next_request(
    auth_client: TestClient, components: Components
) -> None:
    key = components.guards.keys.create("soon-revoked", "chat")
    assert auth_client.get("/v1/models", headers=bearer(key)).status_code == 200
    components.guards.keys.revoke("soon-revoked")
    unauthorized(auth_client.get("/v1/models", headers=bearer(key)))


def test_conversations_are_private_to_their_key(
    auth_client: TestClient, components: Components, keys: dict[str, str]
) -> None:
    other = components.guards.keys.create("other-user", "chat")
    started = auth_client.post(
        "/api/chat", json={"question": QUESTION, "stream": False}, headers=bearer(keys["chat"])
    ).json()
    path = f"/api/conversations/{started['conversation_id']}"
    assert auth_client.get(path, headers=bearer(keys["chat"])).status_code == 200
    assert auth_client.get(path, headers=bearer(other)).status_code == 404
    assert auth_client.get(path, headers=bearer(keys["admin"])).status_code == 200
    follow = auth_client.post(
        "/api/chat",
        json={"question": "and?", "conversation_id": started["conversation_id"]},
        headers=bearer(other),
    )
    assert follow.status_code == 404


def test_openai_client_sends_its_key(live_server_auth: tuple[str, str]) -> None:
    base, key = live_server_auth
    good = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)
    assert [m.id for m in good.models.list()][1:3] == ["docchat", "docchat/docs"]
    bad = openai.OpenAI(base_url=f"{base}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_admin_routes(auth_client: TestClient, keys: dict[str, str]) -> None:
    listed = auth_client.get("/api/admin/keys", headers=bearer(keys["admin"])).json()
    assert {"test-chat", "test-ingest", "test-admin"} <= {k["name"] for k in listed}
    assert all("key_hash" not in k and "key" not in k for k in listed)
    assert not any(v.startswith("dck_") for k in listed for v in map(str, k.values()))
    runs = auth_client.get("/api/admin/ingest-runs", headers=bearer(keys["admin"])).json()
    assert runs[-1]["status"] == "partial"
    assert any(i["severity"] == "error" for i in runs[-1]["issues"])
