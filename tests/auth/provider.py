"""The real OpenID Connect provider the sign-in tests run against (tests/oidc/provider.mjs,
panva's oidc-provider under node), and a tool's way of getting tokens from it.

The provider is started on a free loopback port with two people in two groups; its
signing keys are made here (so a key rotation is a restart with a new first key, and a
test can sign the few tokens the provider would never issue: each such test says so).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.needs import need_path, need_tool

HERE = Path(__file__).parents[1] / "oidc"
TOOL_REDIRECT = "http://127.0.0.1/tool-callback"
API_AUDIENCE = "urn:docchat:api"
USERS: dict[str, dict[str, Any]] = {
    "alice": {
        "password": "alice-pass-1",
        "name": "Alice Support",
        "email": "alice@example.com",
        "groups": ["support"],
    },
    "bob": {
        "password": "bob-pass-2",
        "name": "Bob Sales",
        "email": "bob@example.com",
        "groups": ["sales", "docchat-admins"],
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_key(kid: str) -> dict[str, Any]:
    """A private RSA signing key as a JWK."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key))
    jwk.update(kid=kid, use="sig", alg="RS256")
    return jwk


@dataclass
class Provider:
    """A running provider: its issuer, keys and people (both changeable)."""

    folder: Path
    port: int
    redirect_uris: list[str]
    post_logout_uris: list[str]
    keys: list[dict[str, Any]] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def signing_key(self) -> dict[str, Any]:
        """The private JWK the provider signs with now."""
        return self.keys[0]

    def set_groups(self, user: str, groups: list[str]) -> None:
        """Move a person between groups at the provider (read at every sign-in)."""
        people = json.loads((self.folder / "users.json").read_text())
        people[user]["groups"] = groups
        (self.folder / "users.json").write_text(json.dumps(people))

    def start(self) -> None:
        (self.folder / "jwks.json").write_text(json.dumps({"keys": self.keys}))
        env = {
            **os.environ,
            "OIDC_PORT": str(self.port),
            "OIDC_JWKS_FILE": str(self.folder / "jwks.json"),
            "OIDC_USERS_FILE": str(self.folder / "users.json"),
            "OIDC_REDIRECT_URIS": ",".join(self.redirect_uris),
            "OIDC_POST_LOGOUT_URIS": ",".join(self.post_logout_uris),
        }
        self.process = subprocess.Popen(
            [shutil.which("node") or "node", str(HERE / "provider.mjs")],
            cwd=HERE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        for line in self.process.stdout:
            if line.startswith("listening "):
                break
            if time.monotonic() > deadline:
                break
        else:
            raise RuntimeError("the test OpenID provider did not start")
        httpx.get(self.issuer + "/.well-known/openid-configuration", timeout=10).raise_for_status()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None

    def rotate(self) -> dict[str, Any]:
        """Restart with a new signing key, the old one still published; the new key."""
        self.stop()
        self.keys.insert(0, new_key(f"k{len(self.keys) + 1}"))
        self.start()
        return self.signing_key

    def sign_in(
        self, client: httpx.Client, authorize_url: str, user: str, password: str | None = None
    ) -> httpx.Response:
        """Follow an authorization request through the provider's login form, as a
        browser would; the response that leaves the provider (its redirect back)."""
        response = client.get(authorize_url)
        while (
            response.is_redirect
            and urlsplit(str(response.next_request.url)).netloc == urlsplit(self.issuer).netloc
        ):
            location = str(response.next_request.url)
            if "/interaction/" in location and response.request.method == "GET":
                page = client.get(location)
                if page.is_redirect:
                    response = page
                    continue
                assert 'id="login"' in page.text, page.text[:500]
                response = client.post(
                    location.rstrip("/") + "/login",
                    data={"login": user, "password": password or USERS[user]["password"]},
                )
                continue
            response = client.get(location)
        return response

    def tool_token(
        self,
        user: str,
        *,
        client_id: str = "docchat-tool",
        resource: str = API_AUDIENCE,
        want: str = "access_token",
    ) -> str:
        """A token the provider issues to a tool for `user` (code flow with PKCE): its
        JWT access token for `resource`, or (want="id_token") its ID token."""
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        state = secrets.token_urlsafe(16)
        params = {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": TOOL_REDIRECT,
            "scope": "openid profile email groups api",
            "state": state,
            "nonce": secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": resource,
            "prompt": "login",
        }
        with httpx.Client(timeout=15) as browser:
            request = browser.build_request("GET", self.issuer + "/auth", params=params)
            back = self.sign_in(browser, str(request.url), user)
            assert back.is_redirect, back.text[:500]
            query = parse_qs(urlsplit(back.headers["location"]).query)
            assert query.get("state") == [state], query
            code = query["code"][0]
            tokens = httpx.post(
                self.issuer + "/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": TOOL_REDIRECT,
                    "code_verifier": verifier,
                    "resource": resource,
                },
                auth=(client_id, f"{client_id}-secret"),
                timeout=15,
            )
            assert tokens.status_code == 200, tokens.text
            return str(tokens.json()[want])


def start_provider(
    folder: Path, redirect_uris: list[str], post_logout_uris: list[str], port: int | None = None
) -> Provider:
    """A provider on `port` (a free loopback one by default), with USERS and one
    signing key."""
    need_tool("node", "the sign-in tests run an OpenID provider under node")
    need_path(
        HERE / "node_modules" / "oidc-provider",
        "the sign-in tests need node and tests/oidc's packages (make install: npm ci)",
    )
    (folder / "users.json").write_text(json.dumps(USERS))
    provider = Provider(
        folder, port or free_port(), redirect_uris, post_logout_uris, [new_key("k1")]
    )
    provider.start()
    return provider


def running_provider(
    folder: Path, redirect_uris: list[str], post_logout_uris: list[str], port: int | None = None
) -> Iterator[Provider]:
    """A provider for a fixture's lifetime."""
    provider = start_provider(folder, redirect_uris, post_logout_uris, port)
    try:
        yield provider
    finally:
        provider.stop()


def join(base: str, path: str) -> str:
    return urljoin(base + "/", path.lstrip("/"))
