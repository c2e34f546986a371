"""deploy/compose.signin.yaml and the Keycloak realm it imports agree with each other
and with docchat's settings (Keycloak's image cannot run here: docs/access.md)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from app.settings import Settings

DEPLOY = Path(__file__).parents[1] / "deploy"


def test_the_keycloak_realm_and_docchats_settings_agree(tmp_path: Path) -> None:
    compose = yaml.safe_load((DEPLOY / "compose.signin.yaml").read_text())
    realm = json.loads((DEPLOY / "keycloak" / "docchat-realm.json").read_text())
    keycloak = compose["services"]["keycloak"]
    assert keycloak["profiles"] == ["signin"]
    assert keycloak["image"].startswith("quay.io/keycloak/keycloak:")
    assert [g["name"] for g in realm["groups"]] == ["support", "sales"]

    env = compose["services"]["docchat"]["environment"]
    values = {k.removeprefix("DOCCHAT_").lower(): v for k, v in env.items()}
    settings = Settings(
        _env_file=None,
        _secrets_dir=str(tmp_path),
        env=values["env"],
        oidc={
            key.removeprefix("oidc__"): json.loads(v) if v.startswith("[") else v
            for key, v in values.items()
            if key.startswith("oidc__")
        },
    )
    oidc = settings.oidc
    client = next(c for c in realm["clients"] if c["clientId"] == oidc.client_id)
    assert f"{oidc.public_url}/auth/callback" in client["redirectUris"]
    assert f"{oidc.public_url}/" in client["attributes"]["post.logout.redirect.uris"].split("##")
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert client["publicClient"] is False
    # The secret comes from the same file docchat reads, never from the realm file.
    assert client["secret"] == "${DOCCHAT_CLIENT_SECRET}"
    assert "oidc__client_secret" in keycloak["secrets"]
    mappers = {m["protocolMapper"]: m["config"] for m in client["protocolMappers"]}
    groups = mappers["oidc-group-membership-mapper"]
    assert groups["claim.name"] == oidc.groups_claim
    assert groups["id.token.claim"] == "true"
    assert groups["full.path"] == "false"  # names, as admin_groups lists them
    assert set(oidc.admin_groups) <= {g["name"] for g in realm["groups"]}
    # Access tokens name docchat, so bearer tokens pass the audience check.
    assert mappers["oidc-audience-mapper"]["included.client.audience"] in oidc.token_audiences
    assert oidc.issuer == "http://localhost:8080/realms/" + realm["realm"]
    assert settings.auth_enabled
