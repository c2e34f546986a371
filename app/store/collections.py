"""Collections, their readers and owners: which groups, people and keys may read a
collection's documents, and which may also fill it (app/access decides with these
rows). Declared on the same Base as every other table; importing this
module puts them in its metadata (Alembic's env does)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from app.store.models import Base, utcnow

ReaderKind = Literal["everyone", "group", "user", "key"]
READER_KINDS: tuple[ReaderKind, ...] = ("everyone", "group", "user", "key")
# An owner is someone: never "everyone".
OWNER_KINDS: tuple[ReaderKind, ...] = ("group", "user", "key")
# The subject of an "everyone" reader: there is only one.
EVERYONE = "*"


class Collection(Base):
    """A collection a server answers from: registered by an admin (or by the first
    ingest into it), read by its readers and by admins."""

    __tablename__ = "collections"

    # The name ingest and the vector store use (Chroma's limit: 3-63 characters).
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")

    readers: Mapped[list[CollectionReader]] = relationship(
        cascade="all, delete-orphan", order_by="(CollectionReader.kind, CollectionReader.subject)"
    )
    owners: Mapped[list[CollectionOwner]] = relationship(
        cascade="all, delete-orphan", order_by="(CollectionOwner.kind, CollectionOwner.subject)"
    )


class Grant:
    """The columns a reader's and an owner's row share: the collection, who (a kind and
    its subject) and when and by whom they were granted."""

    collection: Mapped[str] = mapped_column(
        ForeignKey("collections.name", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    granted_by: Mapped[str] = mapped_column(String(64), default="")


class CollectionReader(Grant, Base):
    """Who may read a collection: everyone who may chat, a group (by the name the
    provider's claim gives it), a person (docchat's user id) or an API key (its id)."""

    __tablename__ = "collection_readers"


class CollectionOwner(Grant, Base):
    """Who may fill a collection without being an admin: upload into it, add, remove and
    sync its sources, see its ingest runs and findings (and read it). A group, a person
    or a key, named as readers are."""

    __tablename__ = "collection_owners"


# Either table of grants (what granted_to, the policy and the admin's work take).
GrantTable = type[CollectionReader] | type[CollectionOwner]


def registered(session: Session) -> list[Collection]:
    """Every registered collection, by name."""
    return list(session.scalars(select(Collection).order_by(Collection.name)))


def granted_to(
    session: Session,
    *,
    groups: frozenset[str],
    user_id: str | None,
    key_id: str | None,
    table: GrantTable = CollectionReader,
) -> set[str]:
    """The collections whose readers (or owners, with `table`) name everyone, one of
    the groups, the person or the key: one query, whatever the number of collections."""
    subjects: list[tuple[str, str]] = [("everyone", EVERYONE)]
    subjects += [("group", g) for g in groups]
    if user_id is not None:
        subjects.append(("user", user_id))
    if key_id is not None:
        subjects.append(("key", key_id))
    rows = session.execute(
        select(table.collection, table.kind, table.subject)
        .join(Collection)
        .where(table.subject.in_({s for _, s in subjects}))
    )
    wanted = set(subjects)
    return {name for name, kind, subject in rows if (kind, subject) in wanted}
