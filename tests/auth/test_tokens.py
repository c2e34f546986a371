"""Bearer tokens on the API: the provider's JWT access tokens are accepted (groups give
the scope, keys rotate); every bad token is refused with its reason, audited and
counted. Tokens come from the real provider; the few it would never issue (alg none,
HMAC signed with its public key, a future nbf) are made here, and each says so."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from app.auth.errors import AuthRefused
from app.auth.provider import Provider as ProviderClient
from app.auth.tokens import TokenChecker
from app.auth.users import UserStore
from app.components import Components
from app.main import create_app
from app.settings import Settings
from tests.auth.conftest import audit_events, metric
from tests.auth.provider import Provider, new_key


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(client: TestClient, token: str, code: str, components: Components) -> None:
    """The token is refused with `code`, which the audit trail and the metric show."""
    before = metric(client, "docchat_auth_refusals_total", "reason", code)
    response = client.get("/v1/models", headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["type"] == code, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert metric(client, "docchat_auth_refusals_total", "reason", code) == before + 1
    latest = audit_events(components, "auth.token")[0]
    assert latest["outcome"] == "refused"
    assert str(latest["reason"]).startswith(code)
    assert token not in json.dumps(latest)


def hand_made(claims: dict[str, Any], key: Any, alg: str, headers: dict[str, Any]) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_providers_access_token_is_accepted_and_groups_give_the_scope(
    app_client: TestClient, provider: Provider, components: Components
) -> None:
    alice = provider.tool_token("alice")
    assert app_client.get("/v1/models", headers=bearer(alice)).status_code == 200
    assert app_client.get("/api/admin/keys", headers=bearer(alice)).status_code == 403
    bob = provider.tool_token("bob")  # in docchat-admins
    assert app_client.get("/api/admin/keys", headers=bearer(bob)).status_code == 200
    # A person first seen through a token is recorded like one who signed in.
    # (An access token carries no name or e-mail: the ID token at sign-in does.)
    people = {p.subject: p for p in UserStore(components.db).list()}
    assert people["bob"].groups == {"sales", "docchat-admins"}
    # The admin audit names the person, typed.
    missing = app_client.delete("/api/admin/keys/no-such-key", headers=bearer(bob))
    assert missing.status_code == 404, missing.text
    event = audit_events(components, "key.revoke")[0]
    assert event["target"] == "no-such-key"
    assert event["actor"] == f"user:{people['bob'].id}"


def test_expired_wrong_audience_and_forged_tokens_are_refused(
    app_client: TestClient, provider: Provider, components: Components
) -> None:
    short = provider.tool_token("alice", client_id="docchat-short")  # lives 3 seconds
    assert app_client.get("/v1/models", headers=bearer(short)).status_code == 200
    time.sleep(4.2)
    refused(app_client, short, "token_expired", components)

    other = provider.tool_token("alice", resource="urn:other:api")
    assert jwt.decode(other, options={"verify_signature": False})["aud"] == "urn:other:api"
    refused(app_client, other, "token_wrong_audience", components)

    # Forged: the provider's token with a group added; its signature no longer matches.
    head, body, signature = provider.tool_token("alice").split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["groups"] = ["docchat-admins"]
    refused(app_client, f"{head}.{b64(claims)}.{signature}", "token_bad_signature", components)

    # An ID token is not an access token (and was issued to another client here).
    id_token = provider.tool_token("alice", want="id_token")
    refused(app_client, id_token, "token_wrong_audience", components)


def test_tokens_the_provider_would_never_issue_are_refused(
    app_client: TestClient, provider: Provider, components: Components
) -> None:
    # Hand-made, each to provoke what the provider never produces.
    now = int(time.time())
    claims = {
        "iss": provider.issuer,
        "sub": "alice",
        "aud": "urn:docchat:api",
        "iat": now,
        "exp": now + 600,
        "groups": ["docchat-admins"],
    }
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{b64(claims)}."
    refused(app_client, unsigned, "token_unsigned", components)

    # HMAC "signed" with the provider's public key (the algorithm-confusion attack).
    public = RSAAlgorithm.from_jwk(json.dumps(provider.signing_key)).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    confused = "{}.{}".format(
        b64({"alg": "HS256", "typ": "JWT", "kid": provider.signing_key["kid"]}), b64(claims)
    )
    mac = hmac.new(pem, confused.encode(), hashlib.sha256).digest()
    confused += "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    refused(app_client, confused, "token_algorithm_refused", components)

    # Signed with the provider's own key, but valid only in an hour.
    private = RSAAlgorithm.from_jwk(json.dumps(provider.signing_key))
    early = hand_made(
        {**claims, "nbf": now + 3600}, private, "RS256", {"kid": provider.signing_key["kid"]}
    )
    refused(app_client, early, "token_not_yet_valid", components)

    # Signed by a key the provider does not publish, under an id it never used.
    stranger = RSAAlgorithm.from_jwk(json.dumps(new_key("zz")))
    refused(
        app_client,
        hand_made(claims, stranger, "RS256", {"kid": "zz"}),
        "token_unknown_key",
        components,
    )
    # ... or under the provider's key id: the signature fails.
    refused(
        app_client,
        hand_made(claims, stranger, "RS256", {"kid": provider.signing_key["kid"]}),
        "token_bad_signature",
        components,
    )
    refused(app_client, "not.a.jwt", "token_malformed", components)


def test_an_id_token_is_no_bearer_token_even_for_docchats_audience(
    components: Components, signin_settings: Settings, provider: Provider
) -> None:
    # Audiences left empty: bearer tokens must name the client id, as ID tokens do.
    settings = signin_settings.model_copy(
        update={"oidc": signin_settings.oidc.model_copy(update={"audiences": []})}
    )
    id_token = provider.tool_token("alice", client_id="docchat", want="id_token")
    assert jwt.decode(id_token, options={"verify_signature": False})["aud"] == "docchat"
    with TestClient(create_app(settings, components)) as client:
        refused(client, id_token, "token_is_id_token", components)


def test_nonce_of_an_id_token_must_be_the_sign_ins(
    provider: Provider, signin_settings: Settings
) -> None:
    # A real ID token (issued to the tool client), checked as that client would.
    settings = signin_settings.oidc.model_copy(update={"client_id": "docchat-tool"})
    checker = TokenChecker(settings, ProviderClient(settings))
    token = provider.tool_token("alice", want="id_token")
    nonce = jwt.decode(token, options={"verify_signature": False})["nonce"]
    assert checker.id_token(token, nonce)["sub"] == "alice"
    with pytest.raises(AuthRefused) as caught:
        checker.id_token(token, "another-sign-ins-nonce")
    assert caught.value.code == "nonce_mismatch"


def test_a_rotated_signing_key_is_fetched_once_seen(
    app_client: TestClient, provider: Provider
) -> None:
    before = provider.tool_token("alice")
    assert app_client.get("/v1/models", headers=bearer(before)).status_code == 200
    provider.rotate()
    after = provider.tool_token("alice")
    assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
    assert app_client.get("/v1/models", headers=bearer(after)).status_code == 200
    # The old key is still published: tokens signed with it stay good until they expire.
    assert app_client.get("/v1/models", headers=bearer(before)).status_code == 200


def test_unknown_key_ids_do_not_make_docchat_hammer_the_provider(
    provider: Provider, signin_settings: Settings
) -> None:
    settings = signin_settings.oidc.model_copy(update={"jwks_min_refresh_s": 60})
    client = ProviderClient(settings)
    fetched: list[str] = []
    original = client._refresh_keys

    def counting() -> None:
        fetched.append("jwks")
        original()

    client._refresh_keys = counting  # type: ignore[method-assign]
    assert client.key(provider.signing_key["kid"]) is not None
    for kid in ("x1", "x2", "x3"):
        assert client.key(kid) is None
    assert fetched == ["jwks"]
