"""Checking the provider's JWTs: ID tokens at sign-in, bearer tokens on the API.

PyJWT checks the signature (with the key the provider publishes under the token's key
id, by that key's own algorithm), the issuer, the audience and the times; what is
refused before any of that says so plainly: no algorithm or `none`, an HMAC algorithm
(whose "secret" would be the provider's public key), an algorithm not allowed here.
"""

from __future__ import annotations

from typing import Any

import jwt
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
)

from app.auth.errors import AuthRefused
from app.auth.provider import Provider
from app.settings import OidcSettings

# (exception, code, message): the first that matches names the refusal.
REFUSALS: tuple[tuple[type[Exception], str, str], ...] = (
    (ExpiredSignatureError, "token_expired", "the token has expired"),
    (ImmatureSignatureError, "token_not_yet_valid", "the token is not valid yet (nbf or iat)"),
    (InvalidIssuedAtError, "token_not_yet_valid", "the token was issued in the future"),
    (InvalidAudienceError, "token_wrong_audience", "the token was not issued for docchat"),
    (InvalidIssuerError, "token_wrong_issuer", "the token comes from another issuer"),
    (InvalidSignatureError, "token_bad_signature", "the token's signature does not verify"),
    (InvalidAlgorithmError, "token_algorithm_refused", "the token's algorithm is not accepted"),
    (MissingRequiredClaimError, "token_incomplete", "the token lacks a required claim"),
)


def refusal(exc: InvalidTokenError) -> AuthRefused:
    """The refusal a PyJWT error stands for."""
    for kind, code, message in REFUSALS:
        if isinstance(exc, kind):
            return AuthRefused(code, message)
    return AuthRefused("token_malformed", "the token is not a well-formed signed JWT")


class TokenChecker:
    """Verifies tokens signed by one provider."""

    def __init__(self, settings: OidcSettings, provider: Provider) -> None:
        self.settings = settings
        self.provider = provider

    def _decode(self, token: str, audience: list[str]) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except InvalidTokenError:
            raise AuthRefused("token_malformed", "the token is not a well-formed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise AuthRefused("token_unsigned", "unsigned tokens (alg none) are refused")
        if alg.upper().startswith("HS"):
            raise AuthRefused(
                "token_algorithm_refused",
                f"{alg} (a shared-secret signature) is refused: the provider signs with its "
                "private key",
            )
        if alg not in self.settings.algorithms:
            raise AuthRefused("token_algorithm_refused", f"algorithm {alg} is not accepted")
        kid = header.get("kid")
        key = self.provider.key(kid if isinstance(kid, str) else None)
        if key is None:
            raise AuthRefused(
                "token_unknown_key", "the token is signed by a key the provider does not publish"
            )
        if key.algorithm_name != alg:
            # The key decides the algorithm, never the token's header.
            raise AuthRefused(
                "token_algorithm_refused", f"the provider's key {kid!r} does not sign with {alg}"
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=audience,
                issuer=self.provider.metadata().issuer,
                leeway=self.settings.clock_skew_s,
                options={"require": ["exp", "iat", "iss", "sub", "aud"]},
            )
        except InvalidTokenError as exc:
            raise refusal(exc) from None
        return claims

    def id_token(self, token: str, nonce: str) -> dict[str, Any]:
        """The claims of an ID token issued to docchat for this sign-in (its nonce)."""
        claims = self._decode(token, [self.settings.client_id])
        if claims.get("nonce") != nonce:
            raise AuthRefused("nonce_mismatch", "the ID token's nonce is not this sign-in's")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        # OpenID Connect Core 3.1.3.7: with several audiences, azp must name docchat.
        if len(audiences) > 1 and claims.get("azp") != self.settings.client_id:
            raise AuthRefused("token_wrong_audience", "the ID token was issued to another party")
        return claims

    def bearer(self, token: str) -> dict[str, Any]:
        """The claims of a bearer token issued for docchat's API."""
        claims = self._decode(token, self.settings.token_audiences)
        # An ID token proves a sign-in to the client it was issued to; it is not a
        # credential for an API (a leaked one must not become one). Access tokens that
        # say what they are (RFC 9068's at+jwt, Keycloak's typ Bearer) are taken as such
        # even where a provider copies the sign-in's nonce into them.
        kind = str(jwt.get_unverified_header(token).get("typ", "")).lower()
        declared_access = kind in ("at+jwt", "application/at+jwt") or claims.get("typ") == "Bearer"
        looks_like_id = claims.get("typ") == "ID" or "at_hash" in claims or "nonce" in claims
        if looks_like_id and not declared_access:
            raise AuthRefused("token_is_id_token", "an ID token is not accepted as a bearer token")
        return claims
