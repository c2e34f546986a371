"""People who sign in, and their groups: recorded at the first sign-in, groups replaced
by what the provider's claim says at every sign-in (and with every bearer token that
carries the claim), disabled and enabled by an admin. Disabling ends every session at
once and refuses the person's tokens."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.auth.errors import AuthRefused
from app.store import audit
from app.store.db import Database
from app.store.models import utcnow
from app.store.people import Group, SignInSession, User, find_user

MAX_GROUPS = 200  # more in one claim is a misconfigured provider, not a person


@dataclass(frozen=True)
class Person:
    """A recorded person, as the rest of docchat sees them."""

    id: str
    subject: str
    username: str
    display_name: str
    email: str
    groups: frozenset[str]
    created_at: datetime
    last_sign_in_at: datetime | None
    disabled_at: datetime | None

    @property
    def label(self) -> str:
        """How the page shows them."""
        return self.display_name or self.username or self.email or self.id

    @property
    def state(self) -> str:
        return "disabled" if self.disabled_at is not None else "active"


def claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by a dotted path (realm_access.roles); None where it is absent."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def groups_in(claims: dict[str, Any], path: str) -> frozenset[str] | None:
    """The groups a claim lists (a list of names, or one name); None where the claim is
    absent (then what docchat holds stands)."""
    value = claim(claims, path)
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    found = frozenset(str(n).strip()[:255] for n in names if isinstance(n, str) and n.strip())
    if len(found) > MAX_GROUPS:
        raise AuthRefused("too_many_groups", f"the groups claim lists over {MAX_GROUPS} groups")
    return found


def person(row: User) -> Person:
    return Person(
        row.id,
        row.subject,
        row.username,
        row.display_name,
        row.email,
        frozenset(g.name for g in row.groups),
        row.created_at,
        row.last_sign_in_at,
        row.disabled_at,
    )


class UserStore:
    """People and groups in the SQL database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _set_groups(self, session: Session, row: User, names: Iterable[str]) -> None:
        wanted = sorted(set(names))
        if [g.name for g in row.groups] == wanted:
            return
        known = {g.name: g for g in session.scalars(select(Group).where(Group.name.in_(wanted)))}
        for name in wanted:
            if name not in known:
                known[name] = Group(name=name)
                session.add(known[name])
        row.groups = [known[name] for name in wanted]

    def record(
        self, issuer: str, claims: dict[str, Any], groups_claim: str, *, sign_in: bool
    ) -> Person:
        """The person these verified claims are (recorded if new; their name, e-mail
        and groups refreshed). AuthRefused if they are disabled."""
        subject = str(claims["sub"])
        groups = groups_in(claims, groups_claim)
        with self.db.session() as session:
            row = session.scalar(select(User).where(User.issuer == issuer, User.subject == subject))
            if row is None:
                row = User(id=secrets.token_hex(6), issuer=issuer, subject=subject)
                session.add(row)
            if row.disabled_at is not None:
                raise AuthRefused(
                    "user_disabled", "this account is disabled in docchat", user_id=row.id
                )
            for field, name in (
                ("username", "preferred_username"),
                ("email", "email"),
                ("display_name", "name"),
            ):
                value = claims.get(name)
                if isinstance(value, str) and value != getattr(row, field):
                    setattr(row, field, value[:255])
            if groups is not None:
                self._set_groups(session, row, groups)
            if sign_in:
                row.last_sign_in_at = utcnow()
            session.flush()
            return person(row)

    def get(self, user_id: str) -> Person | None:
        with self.db.session() as session:
            row = session.get(User, user_id)
            return person(row) if row is not None else None

    def list(self) -> list[Person]:
        """Everyone recorded, by user name."""
        with self.db.session() as session:
            rows = session.scalars(select(User).order_by(User.username, User.id)).all()
            return [person(r) for r in rows]

    def _change(self, who: str, action: str, actor: str, change: Any) -> Person:
        """Apply `change(session, row)` (which returns the event's detail) to the person
        `who` names, with its audit event; a refusal, audited, if there is no such one."""
        with self.db.session() as session:
            row = find_user(session, who)
            if row is not None:
                detail = change(session, row)
                audit.record(session, actor, action, f"user:{row.id}", detail=detail)
                session.flush()
                return person(row)
        # Written on its own: the transaction that found no one has nothing to commit.
        audit.record_in(self.db, actor, action, who, "refused", "no such user")
        raise LookupError(f"no user {who!r} (id, user name or e-mail)")

    def disable(self, who: str, *, actor: str = "cli") -> Person:
        """Disable a person and end every session of theirs at once; audited.
        LookupError: no such person."""

        def disable(session: Session, row: User) -> dict[str, Any]:
            now = utcnow()
            row.disabled_at = row.disabled_at or now
            ended = session.execute(
                update(SignInSession)
                .where(SignInSession.user_id == row.id, SignInSession.ended_at.is_(None))
                .values(ended_at=now)
            )
            return {"sessions_ended": getattr(ended, "rowcount", 0)}

        return self._change(who, "user.disable", actor, disable)

    def enable(self, who: str, *, actor: str = "cli") -> Person:
        """Let a disabled person sign in again; audited. LookupError: no such person."""

        def enable(session: Session, row: User) -> dict[str, Any]:
            row.disabled_at = None
            return {}

        return self._change(who, "user.enable", actor, enable)
