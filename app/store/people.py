"""The people who sign in (app/auth): users, their groups, their sessions and the
sign-ins under way. Declared on the same Base as every other table; importing this
module is what puts them in its metadata (app/store/migrations/env.py does)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    String,
    UniqueConstraint,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from app.store.models import Base, new_id, utcnow


class User(Base):
    """A person who signed in through the OpenID Connect provider: recorded at the first
    sign-in, their groups refreshed from the provider's claim at every one. Readers of a
    collection will name users and groups by these ids."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    # docchat's own id ("user:<id>" as an actor and an owner), never the provider's.
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    # The provider's issuer and its subject (`sub`) for the person: who they are there.
    issuer: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(255))
    username: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    display_name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set by `docchat users disable`: every session ends, no token is accepted.
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)

    groups: Mapped[list[Group]] = relationship(secondary="user_groups", order_by="Group.name")


def find_user(session: Session, who: str) -> User | None:
    """A person by docchat's id, user name or e-mail (exactly; the lowest id first)."""
    return session.scalar(
        select(User)
        .where(or_(User.id == who, User.username == who, User.email == who))
        .order_by(User.id)
        .limit(1)
    )


class Group(Base):
    """A group (or role) named by the provider's groups claim."""

    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserGroup(Base):
    """A person's membership of a group, as the provider said at their last sign-in."""

    __tablename__ = "user_groups"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[str] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class SignInSession(Base):
    """A signed-in browser session, held here (the cookie carries only its random id,
    signed): checked on every request, so ending it here ends it at once."""

    __tablename__ = "signin_sessions"

    # SHA-256 of the session id: a copy of this table opens no session.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The synchronizer token every cookie-authenticated change must carry.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column(default=None)


class PendingSignIn(Base):
    """A sign-in on its way through the provider: what the callback must match (state,
    nonce, PKCE verifier), for one use within minutes."""

    __tablename__ = "pending_signins"

    # SHA-256 of the random id in the browser's short-lived sign-in cookie.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    # Where the page was: a path on this site, never another origin.
    return_to: Mapped[str] = mapped_column(String(2000), default="/")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
