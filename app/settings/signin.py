"""Sign-in with the company's OpenID Connect provider (oidc): the page's sign-in, the
bearer tokens the API accepts, groups and the session cookie. Empty issuer: no sign-in
(API keys only, as before).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from app.settings.validation import SECTION_CONFIG

# Only public-key signatures: an HMAC algorithm would verify with whatever secret the
# verifier is handed, and a provider's public key is no secret (the classic confusion
# attack); "none" is no signature at all.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class OidcSettings(BaseModel):
    """Sign-in with an OpenID Connect provider (Keycloak, Entra ID, Okta, Google...)."""

    model_config = SECTION_CONFIG

    issuer: str | None = Field(
        None,
        description="The provider's issuer URL, exactly as its discovery document states it "
        "(e.g. https://login.example.com/realms/staff); its "
        "/.well-known/openid-configuration is read at start-up. Empty: no sign-in; the "
        "page asks for an API key as before. Set: people sign in on the page, the API "
        "accepts the provider's bearer tokens too, and authentication is on unless "
        "security.auth_enabled says otherwise.",
    )
    discovery_url: str | None = Field(
        None,
        description="Where docchat reads the discovery document, when it cannot reach the "
        "provider at the issuer's own address (a container network: Keycloak's "
        "backchannel name). Empty: <issuer>/.well-known/openid-configuration. The "
        "document's issuer must still be oidc.issuer.",
    )
    client_id: str = Field(
        "", description="docchat's client id at the provider (a confidential client)."
    )
    client_secret: SecretStr | None = Field(
        None,
        description="docchat's client secret at the provider (never logged or shown). "
        "Empty: a public client (PKCE only), for providers that allow it.",
    )
    public_url: str | None = Field(
        None,
        description="docchat's own address as people's browsers reach it (e.g. "
        "https://docs.example.com): the sign-in callback is <public_url>/auth/callback "
        "and must be registered at the provider as a redirect URI, <public_url>/ as a "
        "post-logout redirect URI. Required in production; elsewhere taken from the "
        "request.",
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile", "email"],
        description="Scopes asked for at sign-in (openid is always added). Add the scope "
        "your provider needs to release the groups claim (e.g. groups).",
    )
    groups_claim: str = Field(
        "groups",
        description="The claim that lists a person's groups or roles, in the ID token (or "
        "the userinfo answer) and in bearer tokens; a dotted path reaches into an object "
        "(realm_access.roles for Keycloak's realm roles). Refreshed at every sign-in.",
    )
    admin_groups: list[str] = Field(
        default_factory=list,
        description="Groups whose members may use the admin routes (as an admin key "
        "does). Everyone else signed in may chat.",
    )
    ingest_groups: list[str] = Field(
        default_factory=list,
        description="Groups whose members may also ingest (as an ingest key does).",
    )
    audiences: list[str] = Field(
        default_factory=list,
        description="Audiences a bearer token must be issued for (one match is enough). "
        "Empty: the client id. For providers that issue access tokens for a named API "
        "(Entra ID's api://..., Okta's authorization server audience), name it here.",
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256"],
        description="Signature algorithms accepted on ID tokens and bearer tokens: public-key "
        "ones only (none and HMAC are refused whatever is set here).",
    )
    clock_skew_s: int = Field(
        30,
        ge=0,
        le=300,
        description="Seconds of clock difference with the provider tolerated on a token's "
        "exp, nbf and iat.",
    )
    jwks_min_refresh_s: float = Field(
        30.0,
        ge=0,
        description="A token signed by a key docchat has not seen makes it fetch the "
        "provider's keys again (a key rotation), at most once in this many seconds, so "
        "forged key ids cannot make it hammer the provider.",
    )
    session_idle_minutes: int = Field(
        60,
        ge=1,
        description="A signed-in session ends after this long without a request; each "
        "request renews it.",
    )
    session_max_hours: float = Field(
        12,
        gt=0,
        description="A session ends this long after sign-in, however active: then the "
        "person signs in again at the provider (usually without typing anything).",
    )
    cookie_name: str = Field(
        "docchat_session",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Name of the session cookie (HttpOnly, signed; holds a random session "
        "id, never a token). Prefixed with __Host- when the cookie is Secure.",
    )
    cookie_secure: bool | None = Field(
        None,
        description="Send the session cookie over HTTPS only. Empty: on outside "
        "development (docchat sits behind a TLS proxy there).",
    )
    cookie_samesite: Literal["lax", "strict"] = Field(
        "lax",
        description="The session cookie's SameSite. lax (the default) lets the provider's "
        "redirect back carry it; strict also withholds it from links followed from other "
        "sites (people then land signed out and sign in again). Cookie-authenticated "
        "changes always need the CSRF token as well.",
    )
    timeout_s: float = Field(
        10.0, gt=0, description="Timeout of each request to the provider (discovery, keys, token)."
    )

    @property
    def enabled(self) -> bool:
        """Whether sign-in is configured."""
        return bool(self.issuer)

    @property
    def token_audiences(self) -> list[str]:
        """The audiences a bearer token may name."""
        return self.audiences or [self.client_id]

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: list[str]) -> list[str]:
        refused = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if refused or not algorithms:
            raise ValueError(
                "oidc.algorithms takes public-key algorithms only "
                f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))}); refused: {', '.join(refused)}"
            )
        return algorithms

    @field_validator("issuer", "public_url", "discovery_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None or url == "":
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        if parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError("must be a plain URL (no credentials, query or fragment)")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _client_named(self) -> OidcSettings:
        if self.issuer and not self.client_id:
            raise ValueError("oidc.client_id is required when oidc.issuer is set")
        return self
