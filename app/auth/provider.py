"""The OpenID provider as docchat sees it: its discovery document and its signing keys
(JWKS), fetched over HTTP and cached; a key id never seen makes the keys be fetched
again (the provider rotated them), at most once per `jwks_min_refresh_s`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKError, PyJWKSetError

from app.auth.errors import ProviderUnavailable
from app.settings import OidcSettings

DISCOVERY_PATH = "/.well-known/openid-configuration"
# The discovery document changes rarely (new endpoints); read again after this long.
METADATA_TTL_S = 3600.0


@dataclass(frozen=True)
class Metadata:
    """What docchat uses of the discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    token_auth_methods: tuple[str, ...]


class Provider:
    """One OpenID provider: discovery, keys, the authorization URL, the token request."""

    def __init__(self, settings: OidcSettings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self.http = http or httpx.Client(timeout=settings.timeout_s)
        self._lock = threading.Lock()
        self._metadata: Metadata | None = None
        self._metadata_at = 0.0
        self._keys: dict[str, PyJWK] = {}
        self._keys_at = float("-inf")

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self.http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(f"could not read the provider's {what}: {exc}") from None
        if not isinstance(body, dict):
            raise ProviderUnavailable(f"the provider's {what} is not a JSON object")
        return body

    def metadata(self) -> Metadata:
        """The discovery document (cached); its issuer must be the configured one."""
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._metadata_at < METADATA_TTL_S:
                return self._metadata
        issuer = str(self.settings.issuer)
        url = self.settings.discovery_url or issuer + DISCOVERY_PATH
        body = self._get_json(url, "discovery document")
        # OpenID Connect Discovery 1.0, 4.3: the issuer must match exactly, or tokens
        # from one tenant could pass for another's.
        if body.get("issuer", "").rstrip("/") != issuer:
            raise ProviderUnavailable(
                f"the discovery document names issuer {body.get('issuer')!r}, not {issuer!r}"
            )
        try:
            found = Metadata(
                issuer=str(body["issuer"]),
                authorization_endpoint=str(body["authorization_endpoint"]),
                token_endpoint=str(body["token_endpoint"]),
                jwks_uri=str(body["jwks_uri"]),
                userinfo_endpoint=body.get("userinfo_endpoint"),
                end_session_endpoint=body.get("end_session_endpoint"),
                token_auth_methods=tuple(
                    body.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
                ),
            )
        except KeyError as exc:
            raise ProviderUnavailable(f"the discovery document lacks {exc}") from None
        with self._lock:
            self._metadata, self._metadata_at = found, time.monotonic()
        return found

    def key(self, kid: str | None) -> PyJWK | None:
        """The provider's public key with this id (the only key, when the token names
        none and the provider has one); None when even fresh keys lack it."""
        with self._lock:
            found = self._pick(kid)
            stale = time.monotonic() - self._keys_at >= self.settings.jwks_min_refresh_s
        if found is not None or not stale:
            return found
        self._refresh_keys()
        with self._lock:
            return self._pick(kid)

    def _pick(self, kid: str | None) -> PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _refresh_keys(self) -> None:
        body = self._get_json(self.metadata().jwks_uri, "signing keys (JWKS)")
        with self._lock:
            self._keys_at = time.monotonic()
        try:
            keys = PyJWKSet.from_dict(body).keys
        except (PyJWKError, PyJWKSetError) as exc:
            raise ProviderUnavailable(f"the provider's signing keys are unusable: {exc}") from None
        # Signing keys only; one without an id is kept under "" (used when it is alone).
        usable = {k.key_id or "": k for k in keys if k.public_key_use in (None, "sig")}
        with self._lock:
            self._keys = usable

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str
    ) -> str:
        """Where the browser goes to sign in: the code flow with PKCE (S256)."""
        scopes = ["openid", *(s for s in self.settings.scopes if s != "openid")]
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
            }
        )
        endpoint = self.metadata().authorization_endpoint
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def exchange(self, *, code: str, redirect_uri: str, code_verifier: str) -> dict[str, Any]:
        """The token response for an authorization code (client authenticated as the
        provider prefers: HTTP Basic, else in the form)."""
        metadata = self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
            "client_id": self.settings.client_id,
        }
        auth: tuple[str, str] | None = None
        secret = self.settings.client_secret
        if secret is not None:
            if "client_secret_basic" in metadata.token_auth_methods:
                auth = (self.settings.client_id, secret.get_secret_value())
            else:
                form["client_secret"] = secret.get_secret_value()
        try:
            response = self.http.post(
                metadata.token_endpoint,
                data=form,
                auth=auth or httpx.USE_CLIENT_DEFAULT,
                headers={"Accept": "application/json"},
            )
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(f"the provider's token endpoint failed: {exc}") from None
        if not isinstance(body, dict):
            raise ProviderUnavailable("the provider's token response is not a JSON object")
        if response.status_code != 200:
            # An OAuth error (invalid_grant for a used or stolen code): the caller refuses.
            body.setdefault("error", f"http_{response.status_code}")
        return body

    def userinfo(self, access_token: str) -> dict[str, Any]:
        """The userinfo answer (for groups a provider keeps out of its ID token)."""
        endpoint = self.metadata().userinfo_endpoint
        if not endpoint:
            return {}
        try:
            response = self.http.get(
                endpoint,
                headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            )
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(f"the provider's userinfo endpoint failed: {exc}") from None
        return body if isinstance(body, dict) else {}

    def logout_url(self, post_logout_redirect_uri: str) -> str | None:
        """RP-initiated logout at the provider, where it offers it (None: it does not)."""
        try:
            endpoint = self.metadata().end_session_endpoint
        except ProviderUnavailable:
            return None
        if not endpoint:
            return None
        query = urlencode(
            {
                "client_id": self.settings.client_id,
                "post_logout_redirect_uri": post_logout_redirect_uri,
            }
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def close(self) -> None:
        self.http.close()
