"""Server-side sessions for the page, and the sign-ins on their way through the
provider.

The browser holds only a random id, signed (HMAC-SHA256 with a key derived from the API
key pepper, so a cookie made up elsewhere is refused before any lookup); the database
holds its SHA-256, the person, the CSRF token and the times. Every request checks the
row: a session ended here (logout, a disabled person) is over at once. Each request
renews the idle deadline; the absolute one set at sign-in stands.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from app.auth.errors import AuthRefused
from app.store.db import Database
from app.store.models import utcnow
from app.store.people import PendingSignIn, SignInSession, User

# A sign-in must come back from the provider within this long.
PENDING_TTL = timedelta(minutes=10)
# last_seen_at is written at most this often per session, not on every request.
SEEN_RESOLUTION = timedelta(minutes=1)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636, 4.2)."""
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


@dataclass(frozen=True)
class Live:
    """A session that is valid now: whose it is and its CSRF token."""

    user_id: str
    csrf_token: str


@dataclass(frozen=True)
class Pending:
    """A sign-in started in this browser: what the provider's answer must match."""

    state: str
    nonce: str
    code_verifier: str
    return_to: str


class SessionStore:
    """Sessions and pending sign-ins in the SQL database."""

    def __init__(
        self, db: Database, secret: bytes, *, idle: timedelta, lifetime: timedelta
    ) -> None:
        self.db = db
        self._secret = secret
        self.idle = idle
        self.lifetime = lifetime

    def _sign(self, value: str) -> str:
        mac = hmac.new(self._secret, value.encode(), hashlib.sha256).digest()
        return f"{value}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    def _unsign(self, cookie: str | None) -> str | None:
        """The id in a cookie we signed; None for anything else."""
        if not cookie or len(cookie) > 200:
            return None
        value, _, _mac = cookie.rpartition(".")
        if not value or not hmac.compare_digest(self._sign(value), cookie):
            return None
        return value

    # ---- sessions

    def start(self, user_id: str, replacing: str | None = None) -> tuple[str, Live]:
        """A new session (a new random id, whatever the browser held: no fixation);
        the one it replaces, if any, ends. Returns the cookie value."""
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        with self.db.session() as session:
            # Sessions past their absolute end open nothing: they go as new ones start.
            session.execute(delete(SignInSession).where(SignInSession.expires_at < now))
            old = self._unsign(replacing)
            if old is not None:
                row = session.get(SignInSession, digest(old))
                if row is not None and row.ended_at is None:
                    row.ended_at = now
            session.add(
                SignInSession(
                    id_hash=digest(session_id),
                    user_id=user_id,
                    csrf_token=csrf,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self.lifetime,
                )
            )
        return self._sign(session_id), Live(user_id, csrf)

    def check(self, cookie: str | None) -> Live:
        """The live session a cookie names (renewed); AuthRefused if it names none, or
        one that ended, expired, went idle or belongs to a disabled person."""
        if not cookie:
            raise AuthRefused("session_missing", "not signed in")
        session_id = self._unsign(cookie)
        if session_id is None:
            raise AuthRefused("session_forged", "the session cookie was not issued by docchat")
        now = utcnow()
        with self.db.session() as session:
            found = session.execute(
                select(SignInSession, User.disabled_at)
                .join(User, User.id == SignInSession.user_id)
                .where(SignInSession.id_hash == digest(session_id))
            ).first()
            if found is None:
                raise AuthRefused("session_missing", "no such session: sign in again")
            row, disabled_at = found
            if disabled_at is not None:
                raise AuthRefused(
                    "user_disabled", "this account is disabled in docchat", user_id=row.user_id
                )
            if (
                row.ended_at is not None
                or row.expires_at <= now
                or now - row.last_seen_at > self.idle
            ):
                raise AuthRefused("session_over", "the session has ended: sign in again")
            if now - row.last_seen_at > SEEN_RESOLUTION:
                row.last_seen_at = now
            return Live(row.user_id, row.csrf_token)

    def end(self, cookie: str | None) -> str | None:
        """End the session a cookie names; its person's id (None: there was none)."""
        session_id = self._unsign(cookie)
        if session_id is None:
            return None
        with self.db.session() as session:
            row = session.get(SignInSession, digest(session_id))
            if row is None or row.ended_at is not None:
                return None
            row.ended_at = utcnow()
            return row.user_id

    # ---- pending sign-ins

    def begin(self, return_to: str) -> tuple[str, Pending]:
        """A sign-in on its way: the cookie value that binds it to this browser, and the
        state, nonce and PKCE verifier to send (the challenge) and to check."""
        handle = secrets.token_urlsafe(32)
        pending = Pending(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),
            return_to=return_to,
        )
        now = utcnow()
        with self.db.session() as session:
            # Abandoned sign-ins go when new ones start: nothing else needs to sweep.
            session.execute(
                delete(PendingSignIn).where(PendingSignIn.created_at < now - PENDING_TTL)
            )
            session.add(
                PendingSignIn(
                    id_hash=digest(handle),
                    state=pending.state,
                    nonce=pending.nonce,
                    code_verifier=pending.code_verifier,
                    return_to=return_to,
                    created_at=now,
                )
            )
        return self._sign(handle), pending

    def take(self, cookie: str | None, state: str | None) -> Pending:
        """The pending sign-in this browser started, used up (a second callback with
        the same answer finds nothing). AuthRefused if there is none, it is stale, or
        the state does not match."""
        handle = self._unsign(cookie)
        if handle is None:
            raise AuthRefused(
                "signin_not_started",
                "no sign-in was started in this browser (or its cookie was lost): start again",
            )
        with self.db.session() as session:
            row = session.get(PendingSignIn, digest(handle))
            if row is None:
                raise AuthRefused(
                    "signin_replayed", "this sign-in was already completed or abandoned"
                )
            session.delete(row)
            pending = Pending(row.state, row.nonce, row.code_verifier, row.return_to)
            stale = utcnow() - row.created_at > PENDING_TTL
        if stale:
            raise AuthRefused("signin_expired", "the sign-in took too long: start again")
        if not state or not hmac.compare_digest(state, pending.state):
            raise AuthRefused("state_mismatch", "the provider's answer is not for this sign-in")
        return pending
