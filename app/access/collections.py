"""An admin's work on collections: create, grant and revoke readers and owners, delete,
describe. Every change is audited (`collection.*`) as done by its actor, refusals
included; the CLI and the admin API both call these."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.store import audit
from app.store.collections import (
    EVERYONE,
    OWNER_KINDS,
    READER_KINDS,
    Collection,
    CollectionOwner,
    CollectionReader,
    Grant,
    GrantTable,
    ReaderKind,
)
from app.store.db import Database
from app.store.keys import find_key
from app.store.models import ApiKey, Document
from app.store.people import User, find_user
from app.store.vectors import VectorStore
from common.errors import DocchatError, Kind

# What Chroma accepts as a collection name (3-63 characters, starting and ending with a
# letter or digit), without "--", which docchat's own index generations use.
NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.]|-(?!-)){1,61}[A-Za-z0-9]")


class CollectionError(DocchatError):
    """A change to a collection that cannot be made (the message says why)."""

    kind = Kind.INVALID
    code = "invalid_collection"


class NoSuchCollection(CollectionError):
    kind = Kind.NOT_FOUND
    code = "collection_not_found"


class CollectionExists(CollectionError):
    kind = Kind.CONFLICT
    code = "collection_exists"


@dataclass(frozen=True)
class Reader:
    """One reader of a collection: its kind, who (a group name, a user or key id) and,
    for people and keys, the name they are known by."""

    kind: str
    subject: str
    label: str = ""
    granted_at: str = ""
    granted_by: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "label": self.label,
            "granted_at": self.granted_at,
            "granted_by": self.granted_by,
        }


@dataclass(frozen=True)
class Role:
    """What readers and owners differ in: their rows, who may hold the role, and the
    words and audit actions that name it."""

    name: str
    article: str
    table: GrantTable
    kinds: tuple[ReaderKind, ...]
    grant_action: str
    revoke_action: str


READER = Role(
    "reader", "a", CollectionReader, READER_KINDS, "collection.grant", "collection.revoke"
)
OWNER = Role(
    "owner",
    "an",
    CollectionOwner,
    OWNER_KINDS,
    "collection.grant_owner",
    "collection.revoke_owner",
)


@dataclass(frozen=True)
class CollectionView:
    """A collection as an admin sees it."""

    name: str
    title: str
    description: str
    created_at: str
    created_by: str
    documents: int
    readers: list[Reader] = field(default_factory=list)
    owners: list[Reader] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "documents": self.documents,
            "readers": [r.as_dict() for r in self.readers],
            "owners": [r.as_dict() for r in self.owners],
        }


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a collection, or None."""
    if not NAME.fullmatch(name):
        return (
            "a collection's name is 3-63 letters, digits, '.', '_' or '-' (no '--'), "
            "starting and ending with a letter or digit"
        )
    return None


class Collections:
    """Registered collections over one database (and, for deletion, the vector store
    and the lexical indexes saved under `lexical_dir`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _get(self, session: Session, name: str) -> Collection:
        row = session.get(Collection, name)
        if row is None:
            raise NoSuchCollection(f"no collection named {name!r}")
        return row

    def create(
        self,
        name: str,
        *,
        title: str = "",
        description: str = "",
        everyone: bool = False,
        actor: str = "cli",
    ) -> CollectionView:
        """Register a collection, readable by admins only until granted (or by everyone
        who may chat, with `everyone`)."""
        detail = {"title": title, "everyone": everyone}
        problem = name_problem(name)
        if problem is not None:
            audit.record_in(self.db, actor, "collection.create", "", "refused", problem, detail)
            raise CollectionError(problem)
        with self.db.session() as session:
            if session.get(Collection, name) is not None:
                reason = f"a collection named {name!r} already exists"
                audit.record_in(self.db, actor, "collection.create", name, "refused", reason)
                raise CollectionExists(reason)
            row = Collection(name=name, title=title, description=description, created_by=actor)
            if everyone:
                row.readers.append(CollectionReader(kind="everyone", subject=EVERYONE))
            session.add(row)
            audit.record(session, actor, "collection.create", name, detail=detail)
            session.flush()
            return self._view(session, row)

    def ensure(self, name: str, *, everyone: bool, actor: str) -> bool:
        """Register `name` if it is not yet (ingest into a new collection; the default
        collection at start-up, readable by everyone as it always was): True if it was
        registered now. Safe when several processes race: the loser finds it there."""
        with self.db.session() as session:
            if session.get(Collection, name) is not None:
                return False
        try:
            self.create(name, everyone=everyone, actor=actor)
        except CollectionExists:
            return False
        return True

    def grant(self, name: str, kind: str, who: str = "", *, actor: str = "cli") -> Reader:
        """Let a reader read the collection: `everyone`, a `group` by name, a `user` by
        id, user name or e-mail (someone who has signed in), a `key` by id or name."""
        return self._change(READER, name, kind, who, actor, add=True)

    def revoke(self, name: str, kind: str, who: str = "", *, actor: str = "cli") -> Reader:
        """Take a reader's access away; it counts from the next request."""
        return self._change(READER, name, kind, who, actor, add=False)

    def grant_owner(self, name: str, kind: str, who: str, *, actor: str = "cli") -> Reader:
        """Let a `group`, `user` or `key` (named as for readers) fill the collection:
        upload into it, add, remove and sync its sources, see its runs; owners read it."""
        return self._change(OWNER, name, kind, who, actor, add=True)

    def revoke_owner(self, name: str, kind: str, who: str, *, actor: str = "cli") -> Reader:
        """Take an owner's rights away; it counts from the next request."""
        return self._change(OWNER, name, kind, who, actor, add=False)

    def _change(
        self, role: Role, name: str, kind: str, who: str, actor: str, *, add: bool
    ) -> Reader:
        """Grant (`add`) or revoke one of the role's rows, audited either way."""
        action = role.grant_action if add else role.revoke_action
        try:
            with self.db.session() as session:
                self._get(session, name)
                if kind not in role.kinds:
                    raise CollectionError(
                        f"{role.article} {role.name} is one of {', '.join(role.kinds)}"
                    )
                reader = self._resolve(session, kind, who)
                row = session.get(role.table, (name, reader.kind, reader.subject))
                if add and row is None:
                    session.add(
                        role.table(
                            collection=name,
                            kind=reader.kind,
                            subject=reader.subject,
                            granted_by=actor,
                        )
                    )
                elif not add and row is None:
                    raise NoSuchCollection(
                        f"{reader.kind} {reader.label!r} is not {role.article} {role.name}"
                    )
                elif not add:
                    session.delete(row)
                detail = {"kind": reader.kind, "subject": reader.subject, "label": reader.label}
                audit.record(session, actor, action, name, detail=detail)
                return reader
        except CollectionError as exc:
            detail = {"kind": kind, "who": who[:255]}
            audit.record_in(self.db, actor, action, name, "refused", str(exc), detail)
            raise

    @staticmethod
    def _resolve(session: Session, kind: str, who: str) -> Reader:
        if kind not in READER_KINDS:
            raise CollectionError(f"a reader is one of {', '.join(READER_KINDS)}")
        reader_kind: ReaderKind = kind
        if reader_kind == "everyone":
            return Reader("everyone", EVERYONE, "everyone")
        if not who.strip():
            raise CollectionError(f"name the {kind}")
        if reader_kind == "group":
            return Reader("group", who.strip(), who.strip())
        if reader_kind == "user":
            user = find_user(session, who)
            if user is None:
                raise NoSuchCollection(
                    f"no user {who!r} has signed in yet: grant one of their groups, or "
                    "grant them after their first sign-in"
                )
            return Reader("user", user.id, user.email or user.username or user.id)
        key = find_key(session, who)
        if key is None:
            raise NoSuchCollection(f"no key named or with id {who!r}")
        return Reader("key", key.id, key.name)

    def delete(
        self,
        name: str,
        vectors: VectorStore | None,
        lexical_dir: Path | None,
        *,
        actor: str = "cli",
    ) -> dict[str, int]:
        """Delete a collection: its readers, its documents and chunks, its vectors (every
        generation) and its saved keyword index. Conversations stay, readable by admins
        only (their owners no longer read the collection), until retention or deletion."""
        with self.db.session() as session:
            if session.get(Collection, name) is None:
                reason = f"no collection named {name!r}"
                audit.record_in(self.db, actor, "collection.delete", name, "refused", reason)
                raise NoSuchCollection(reason)
        if vectors is not None:
            vectors.drop_name(name)
        if lexical_dir is not None:
            (lexical_dir / f"{name}.npz").unlink(missing_ok=True)
        with self.db.session() as session:
            documents = session.scalar(
                select(func.count()).select_from(Document).where(Document.collection == name)
            )
            # Chunks go with their documents (ON DELETE CASCADE; SQLite enforces it here).
            session.execute(delete(Document).where(Document.collection == name))
            row = session.get(Collection, name)
            if row is not None:
                session.delete(row)
            counts = {"documents": int(documents or 0)}
            audit.record(session, actor, "collection.delete", name, detail=counts)
        return counts

    def list(self) -> list[CollectionView]:
        """Every registered collection with its readers and document count."""
        with self.db.session() as session:
            rows = session.scalars(select(Collection).order_by(Collection.name)).all()
            return [self._view(session, row) for row in rows]

    def show(self, name: str) -> CollectionView:
        with self.db.session() as session:
            return self._view(session, self._get(session, name))

    @staticmethod
    def _view(session: Session, row: Collection) -> CollectionView:
        documents = session.scalar(
            select(func.count()).select_from(Document).where(Document.collection == row.name)
        )
        labels = _labels(session, [*row.readers, *row.owners])
        return CollectionView(
            row.name,
            row.title,
            row.description,
            row.created_at.isoformat(timespec="seconds"),
            row.created_by,
            int(documents or 0),
            _listed(row.readers, labels),
            _listed(row.owners, labels),
        )


def _listed(rows: Sequence[Grant], labels: dict[tuple[str, str], str]) -> list[Reader]:
    """Readers' or owners' rows as an admin sees them, people and keys by their labels."""
    return [
        Reader(
            r.kind,
            r.subject,
            labels.get((r.kind, r.subject), r.subject),
            r.granted_at.isoformat(timespec="seconds"),
            r.granted_by,
        )
        for r in rows
    ]


def _labels(session: Session, readers: Sequence[Grant]) -> dict[tuple[str, str], str]:
    """What people and keys are known by (e-mail or user name; the key's name)."""
    users = [r.subject for r in readers if r.kind == "user"]
    keys = [r.subject for r in readers if r.kind == "key"]
    labels: dict[tuple[str, str], str] = {("everyone", EVERYONE): "everyone"}
    for user in session.scalars(select(User).where(User.id.in_(users))) if users else ():
        labels[("user", user.id)] = user.email or user.username or user.id
    for key in session.scalars(select(ApiKey).where(ApiKey.id.in_(keys))) if keys else ():
        labels[("key", key.id)] = key.name
    return labels
