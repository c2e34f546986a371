"""Failed authentication is rate-limited per client address, before any key is hashed."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from app.components import Components
from app.main import create_app
from app.security.keys import Identity, KeyStore
from app.security.limits import RateLimiter
from tests.conftest import with_auth

BUDGET = 5
WRONG = {"Authorization": "Bearer dck_000000000000_" + "x" * 43}


@pytest.fixture
def authenticate_calls(components: Components, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every key the real key store was asked to check. A counting wrapper, only so the
    test can assert that refused requests never reached the hash and the lookup."""
    store: KeyStore = components.guards.keys
    real = store.authenticate
    calls: list[str] = []

    def counting(key: str) -> Identity | None:
        calls.append(key)
        return real(key)

    monkeypatch.setattr(store, "authenticate", counting)
    return calls


def client_from(components: Components, address: str) -> TestClient:
    settings = with_auth(components.settings, auth_failures_per_minute=BUDGET)
    return TestClient(create_app(settings, components), client=(address, 40000))


def test_wrong_keys_beyond_the_budget_get_429_before_hashing(
    components: Components, keys: dict[str, str], authenticate_calls: list[str]
) -> None:
    with client_from(components, "203.0.113.7") as client:
        statuses = [client.get("/v1/models", headers=WRONG).status_code for _ in range(BUDGET)]
        assert statuses == [401] * BUDGET
        assert len(authenticate_calls) == BUDGET
        for _ in range(3):
            limited = client.get("/v1/models", headers=WRONG)
            assert limited.status_code == 429
            assert limited.json()["error"]["type"] == "rate_limited"
            assert 1 <= int(limited.headers["retry-after"]) <= 60 // BUDGET
        assert len(authenticate_calls) == BUDGET  # the refused ones were never checked
        # The address is blocked as a whole while over budget, a valid key included.
        chat = {"Authorization": f"Bearer {keys['chat']}"}
        assert client.get("/v1/models", headers=chat).status_code == 429
        # Public routes stay open.
        assert client.get("/healthz").status_code == 200
    # Another address has its own budget, and a valid key works there.
    with client_from(components, "198.51.100.9") as other:
        assert other.get("/v1/models", headers=chat).status_code == 200


def test_missing_keys_do_not_use_the_budget(
    components: Components, authenticate_calls: list[str]
) -> None:
    """No key, no hash: a page asking for a key is not an attack."""
    with client_from(components, "203.0.113.8") as client:
        assert {client.get("/v1/models").status_code for _ in range(BUDGET * 3)} == {401}
        assert authenticate_calls == []


def test_the_failure_budget_refills(components: Components) -> None:
    settings = with_auth(components.settings, auth_failures_per_minute=20)  # one per 3 s
    with TestClient(create_app(settings, components), client=("203.0.113.9", 1)) as client:
        assert {client.get("/v1/models", headers=WRONG).status_code for _ in range(20)} == {401}
        assert client.get("/v1/models", headers=WRONG).status_code == 429
        time.sleep(3.2)
        assert client.get("/v1/models", headers=WRONG).status_code == 401
        assert client.get("/v1/models", headers=WRONG).status_code == 429


def test_retry_after_takes_nothing() -> None:
    limiter = RateLimiter(60)  # one a second
    assert limiter.retry_after("a") == 0
    assert all(limiter.hit("a") == 0 for _ in range(60))
    assert limiter.retry_after("a") == 1
    assert limiter.retry_after("a") == 1  # looking takes no token
    assert RateLimiter(0).retry_after("a") == 0
