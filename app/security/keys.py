"""API keys: created once and shown once, stored as an HMAC of the key, checked in
constant time, scoped, expiring and revocable."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

# Re-exported: who a caller is lives in identity.py; keys are one kind of caller.
from app.security.identity import SCOPE_LEVEL as SCOPE_LEVEL
from app.security.identity import SCOPES as SCOPES
from app.security.identity import Identity as Identity
from app.security.identity import Scope as Scope
from app.security.identity import may_read as may_read
from app.store import audit
from app.store.collections import Collection
from app.store.db import Database
from app.store.keys import KEY_ID, find_key
from app.store.models import ApiKey, utcnow

KEY_FORMAT = re.compile(r"^dck_([0-9a-f]{12})_([A-Za-z0-9_-]{40,})$")
# A key's name, chosen by an admin: a letter or digit, then letters, digits, ".", "_"
# and "-", at most 64 in all. No ":" (so no name reads like a typed audit actor such as
# "cli:root"), no spaces or control characters; full-matched.
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a key (None: it can)."""
    if not KEY_NAME.fullmatch(name):
        return (
            "a key's name is 1 to 64 of letters, digits, '.', '_' and '-', starting with a "
            "letter or digit"
        )
    if KEY_ID.fullmatch(name):
        # Ids and names are looked up by the same argument: a name shaped like an id
        # could be taken for another key's.
        return "a key's name cannot look like a key id (12 hex digits)"
    return None


# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class KeyInfo:
    """What `keys list` shows."""

    id: str
    name: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    collections: tuple[str, ...] | None = None  # the only ones it reads (None: not limited)

    @property
    def state(self) -> str:
        """active, expired or revoked."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= utcnow():
            return "expired"
        return "active"


class KeyStore:
    """API keys in the SQL database, hashed with the pepper."""

    def __init__(self, db: Database, pepper: bytes, previous_pepper: bytes | None = None) -> None:
        self.db = db
        self._pepper = pepper
        self._previous = previous_pepper

    def _hash(self, key: str, pepper: bytes | None = None) -> str:
        return hmac.new(pepper or self._pepper, key.encode(), hashlib.sha256).hexdigest()

    def create(
        self,
        name: str,
        scope: Scope,
        expires_days: float | None = None,
        *,
        collections: Sequence[str] | None = None,
        actor: str = "cli",
    ) -> str:
        """Store a new key and return it: the only time it is ever seen. Audited (the
        key's name, id and scope; never the key) as done by `actor`. With `collections`
        (registered ones), the key reads those and no other."""
        limit = sorted(set(collections)) if collections else None
        detail: dict[str, object] = {
            "scope": scope,
            "expires_days": expires_days,
            "collections": limit,
        }
        bad_name = name_problem(name)
        if bad_name is not None:
            # The refused name is not the target: it may hold what no row should.
            audit.record_in(self.db, actor, "key.create", "", "refused", bad_name, detail)
            raise ValueError(bad_name)
        if scope not in SCOPES:
            reason = f"scope must be one of {', '.join(SCOPES)}"
            audit.record_in(self.db, actor, "key.create", name, "refused", reason, detail)
            raise ValueError(reason)
        key_id = secrets.token_hex(6)
        key = f"dck_{key_id}_{secrets.token_urlsafe(32)}"
        expires = utcnow() + timedelta(days=expires_days) if expires_days else None
        with self.db.session() as session:
            if session.scalar(select(ApiKey.id).where(ApiKey.name == name)):
                reason = f"a key named {name!r} already exists"
                audit.record_in(self.db, actor, "key.create", name, "refused", reason, detail)
                raise ValueError(reason)
            unknown = [c for c in limit or () if session.get(Collection, c) is None]
            if unknown:
                reason = f"no collection named {', '.join(map(repr, unknown))}"
                audit.record_in(self.db, actor, "key.create", name, "refused", reason, detail)
                raise ValueError(reason)
            session.add(
                ApiKey(
                    id=key_id,
                    name=name,
                    scope=scope,
                    key_hash=self._hash(key),
                    expires_at=expires,
                    collections=limit,
                )
            )
            audit.record(session, actor, "key.create", name, detail={**detail, "id": key_id})
        return key

    def authenticate(self, key: str) -> Identity | None:
        """The identity of a valid key; None for a wrong, expired or revoked one."""
        match = KEY_FORMAT.match(key)
        # Unknown ids still cost a hash, so timing does not tell which ids exist.
        digest = self._hash(key)
        if match is None:
            return None
        with self.db.session() as session:
            row = session.get(ApiKey, match.group(1))
            if row is None:
                hmac.compare_digest(digest, digest)
                return None
            valid = hmac.compare_digest(digest, row.key_hash)
            if not valid and self._previous is not None:
                valid = hmac.compare_digest(self._hash(key, self._previous), row.key_hash)
                if valid:
                    row.key_hash = digest  # re-hash with the current pepper
            if not valid or row.revoked_at is not None:
                return None
            now = utcnow()
            if row.expires_at is not None and row.expires_at <= now:
                return None
            if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
                row.last_used_at = now
            limit = frozenset(row.collections) if row.collections is not None else None
            return Identity(row.id, row.name, row.scope, collections=limit)  # type: ignore[arg-type]

    def list(self) -> list[KeyInfo]:
        """Every key, newest first."""
        with self.db.session() as session:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())).all()
            return [
                KeyInfo(
                    r.id,
                    r.name,
                    r.scope,
                    r.created_at,
                    r.last_used_at,
                    r.expires_at,
                    r.revoked_at,
                    tuple(r.collections) if r.collections is not None else None,
                )
                for r in rows
            ]

    def revoke(self, name_or_id: str, *, actor: str = "cli") -> bool:
        """Revoke a key by id or name (`find_key`); True if one was found and active.
        Audited."""
        with self.db.session() as session:
            row = find_key(session, name_or_id)
            if row is None or row.revoked_at is not None:
                reason = "no such key" if row is None else "already revoked"
                audit.record(session, actor, "key.revoke", name_or_id, "refused", reason)
                return False
            row.revoked_at = utcnow()
            audit.record(session, actor, "key.revoke", row.name, detail={"id": row.id})
            return True
