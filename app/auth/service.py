"""Sign-in as one service: the page's sign-in through the provider (authorization code
with PKCE, state and nonce), its sessions, the API's bearer tokens, and what each
refusal leaves in the audit trail and the metrics. The HTTP edge (app/api/signin.py and
the middleware) only frames it."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from app.auth.errors import AuthRefused
from app.auth.provider import Provider
from app.auth.sessions import Live, SessionStore, pkce_challenge
from app.auth.tokens import TokenChecker
from app.auth.users import Person, UserStore
from app.security.identity import Identity, Scope, Via
from app.settings import OidcSettings
from app.store import audit
from app.store.db import Database

log = logging.getLogger(__name__)

CALLBACK_PATH = "/auth/callback"
# A return URL is a path on this site: "/" then no second "/" or "\" (which browsers
# read as another host), no control characters, no scheme.
SAFE_PATH = re.compile(r"/(?![/\\])[^\x00-\x1f\x7f\\]{0,1999}")
# Refusals worth an audit event: someone tried something. An expired or ended session
# is everyday life (a closed laptop), counted in the metrics only.
QUIET = frozenset({"session_missing", "session_over"})


def safe_return_to(value: str | None) -> str:
    """The return URL if it is a path on this site; AuthRefused otherwise."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if SAFE_PATH.fullmatch(value) is None or parts.scheme or parts.netloc:
        raise AuthRefused("bad_return_to", "the return URL must be a path on this site")
    return value


@dataclass(frozen=True)
class SignedIn:
    """The outcome of a completed sign-in."""

    cookie: str
    person: Person
    return_to: str


class SignInService:
    """The page's sign-in, sessions and the API's bearer tokens, for one provider."""

    def __init__(
        self,
        settings: OidcSettings,
        db: Database,
        cookie_secret: bytes,
        *,
        provider: Provider | None = None,
        count: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.provider = provider or Provider(settings)
        self.tokens = TokenChecker(settings, self.provider)
        self.users = UserStore(db)
        self.sessions = SessionStore(
            db,
            cookie_secret,
            idle=timedelta(minutes=settings.session_idle_minutes),
            lifetime=timedelta(hours=settings.session_max_hours),
        )
        # count(metric, label): "signin" with an outcome, "refusal" with a reason.
        self._count = count or (lambda metric, label: None)

    # ---- what a person may do

    def scope_of(self, groups: frozenset[str]) -> Scope:
        """The scope a person's groups give: admin, ingest, else chat."""
        if groups & set(self.settings.admin_groups):
            return "admin"
        if groups & set(self.settings.ingest_groups):
            return "ingest"
        return "chat"

    def identity(self, person: Person, via: Via) -> Identity:
        """The caller a person is, with the scope their groups give."""
        return Identity.user(
            person.id, person.label, self.scope_of(person.groups), person.groups, via
        )

    # ---- refusals

    def refused(
        self,
        action: str,
        error: AuthRefused,
        *,
        actor: str = "",
        target: str = "",
        detail: dict[str, Any] | None = None,
    ) -> AuthRefused:
        """Count a refusal (and audit it unless it is everyday life); returns it."""
        self._count("refusal", error.code)
        if action == "auth.signin":
            self._count("signin", "refused")
        if error.code not in QUIET:
            who = actor or (f"user:{error.user_id}" if error.user_id else audit.ANONYMOUS)
            audit.record_in(
                self.db,
                who,
                action,
                target,
                "refused",
                f"{error.code}: {error}",
                detail,
            )
        return error

    # ---- the page's sign-in

    def begin(self, return_to: str | None, base_url: str, client: str) -> tuple[str, str]:
        """Start a sign-in: the pending sign-in's cookie value and the provider's URL."""
        try:
            target = safe_return_to(return_to)
        except AuthRefused as exc:
            raise self.refused("auth.signin", exc, detail={"client": client}) from None
        cookie, pending = self.sessions.begin(target)
        url = self.provider.authorization_url(
            redirect_uri=self.callback_url(base_url),
            state=pending.state,
            nonce=pending.nonce,
            code_challenge=pkce_challenge(pending.code_verifier),
        )
        return cookie, url

    def callback_url(self, base_url: str) -> str:
        return (self.settings.public_url or base_url.rstrip("/")) + CALLBACK_PATH

    def home_url(self, base_url: str) -> str:
        return (self.settings.public_url or base_url.rstrip("/")) + "/"

    def complete(
        self,
        *,
        pending_cookie: str | None,
        session_cookie: str | None,
        params: dict[str, str],
        base_url: str,
        client: str,
    ) -> SignedIn:
        """Finish a sign-in from the provider's answer; AuthRefused (audited) if any
        step fails. The browser's old session, if any, ends: the new one has a new id."""
        detail = {"client": client}
        try:
            pending = self.sessions.take(pending_cookie, params.get("state"))
            if params.get("error"):
                raise AuthRefused(
                    "provider_refused",
                    f"the provider refused the sign-in ({params['error'][:100]})",
                )
            # RFC 9207: where the provider names itself, it must be ours (mix-up attack).
            iss = params.get("iss")
            if iss is not None and iss.rstrip("/") != self.provider.metadata().issuer.rstrip("/"):
                raise AuthRefused("wrong_issuer", "the answer comes from another provider")
            code = params.get("code")
            if not code:
                raise AuthRefused("no_code", "the provider's answer holds no code")
            tokens = self.provider.exchange(
                code=code,
                redirect_uri=self.callback_url(base_url),
                code_verifier=pending.code_verifier,
            )
            if "error" in tokens or not isinstance(tokens.get("id_token"), str):
                raise AuthRefused(
                    "code_refused",
                    "the provider would not exchange the code (used already, expired, or not "
                    f"this sign-in's): {str(tokens.get('error', 'no ID token'))[:100]}",
                )
            claims = self.tokens.id_token(tokens["id_token"], pending.nonce)
            if self.settings.groups_claim.split(".")[0] not in claims and isinstance(
                tokens.get("access_token"), str
            ):
                info = self.provider.userinfo(tokens["access_token"])
                if info.get("sub") == claims["sub"]:
                    claims = {**info, **claims}
            person = self.users.record(
                self.provider.metadata().issuer, claims, self.settings.groups_claim, sign_in=True
            )
        except AuthRefused as exc:
            raise self.refused("auth.signin", exc, detail=detail) from None
        cookie, _live = self.sessions.start(person.id, replacing=session_cookie)
        self._count("signin", "ok")
        audit.record_in(
            self.db,
            f"user:{person.id}",
            "auth.signin",
            f"user:{person.id}",
            detail={**detail, "groups": sorted(person.groups)},
        )
        return SignedIn(cookie, person, pending.return_to)

    # ---- sessions

    def session(self, cookie: str) -> tuple[Identity, Live]:
        """The person a session cookie stands for now, and the session; AuthRefused
        (counted, and audited where someone tried something) if it stands for no one."""
        try:
            live = self.sessions.check(cookie)
            person = self.users.get(live.user_id)
            if person is None:
                raise AuthRefused("session_missing", "no such session: sign in again")
        except AuthRefused as exc:
            raise self.refused("auth.session", exc) from None
        return self.identity(person, "session"), live

    def check_csrf(
        self,
        live: Live,
        *,
        token: str | None,
        origin: str | None,
        site: str | None,
        own_origin: str,
    ) -> None:
        """AuthRefused unless a cookie-authenticated change comes from this site's own
        page: the session's CSRF token in the header, and no other origin named."""
        if site is not None and site not in ("same-origin", "none"):
            raise AuthRefused("csrf_failed", "cross-site request refused")
        if origin is not None and origin.rstrip("/") != own_origin.rstrip("/"):
            raise AuthRefused(
                "csrf_failed", f"request from another origin refused ({origin[:100]})"
            )
        if not token or not hmac.compare_digest(token, live.csrf_token):
            raise AuthRefused("csrf_failed", "the CSRF token is missing or wrong")

    def logout(self, cookie: str | None, base_url: str) -> str:
        """End the session; where the browser goes next (the provider's logout, which
        comes back to the page, where it offers one)."""
        user_id = self.sessions.end(cookie)
        if user_id is not None:
            audit.record_in(self.db, f"user:{user_id}", "auth.signout", f"user:{user_id}")
        home = self.home_url(base_url)
        return self.provider.logout_url(home) or home

    # ---- bearer tokens

    def bearer(self, token: str) -> Identity:
        """The person a provider's bearer token stands for; AuthRefused (counted and
        audited) otherwise."""
        try:
            claims = self.tokens.bearer(token)
            person = self.users.record(
                self.provider.metadata().issuer, claims, self.settings.groups_claim, sign_in=False
            )
        except AuthRefused as exc:
            raise self.refused("auth.token", exc) from None
        return self.identity(person, "token")

    def close(self) -> None:
        self.provider.close()
