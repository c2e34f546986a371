"""Why a sign-in, a token or a session was refused: one error, with a stable code (for
the client, the audit trail and the refusal metric) and a message safe to show."""

from __future__ import annotations

from common.errors import DocchatError, Kind


class AuthRefused(DocchatError):
    """A credential or a sign-in step that is not accepted. The message says what was
    wrong with it; it never quotes a token."""

    kind = Kind.INVALID
    code = "auth_refused"

    def __init__(self, code: str, message: str, *, user_id: str | None = None) -> None:
        super().__init__(message, code=code)
        # docchat's id of the person concerned, where known (a disabled one's session).
        self.user_id = user_id


class ProviderUnavailable(DocchatError):
    """The OpenID provider could not be reached or answered nonsense."""

    kind = Kind.UPSTREAM_FAILED
    code = "identity_provider_failed"
