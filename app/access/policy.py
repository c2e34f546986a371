"""Who may read which collection: the one rule every read of documents goes through
(the chat service before it retrieves, the document pages, conversations, feedback,
the OpenAI model list).

- Authentication off (no caller): every registered collection (an unknown name is not
  searched: the vector store would create it empty).
- A key limited to collections (`docchat keys create --collection`): those, if
  registered, and no other, whatever its scope.
- An admin (key scope or a person's groups): every registered collection.
- Anyone else: the collections whose readers name everyone, one of their groups, the
  person themselves, or the key, and those they own.

Owners fill a collection without being admins (upload, its sources, its runs). The same
rule with the owners' rows: auth off, or an admin (a limited admin key: its
collections), owns every collection it reads; a key limited to collections owns those
of them it is an owner of; anyone else the collections whose owners name one of their
groups, the person, or the key.

A collection the caller may not read looks exactly like one that does not exist; one
the caller reads but does not own is refused as such (403, by the API).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.security.identity import Identity
from app.store import collections as rows
from app.store.db import Database
from common.errors import DocchatError, Kind


class CollectionNotFound(DocchatError):
    """No such collection, or none the caller may read (the same answer for both)."""

    kind = Kind.NOT_FOUND
    code = "collection_not_found"

    def __init__(self, name: str) -> None:
        shown = name if len(name) <= 63 else name[:60] + "..."
        super().__init__(f"no collection named {shown!r} that you may read")
        self.name = name


@dataclass(frozen=True)
class CollectionInfo:
    """A collection as a reader sees it."""

    name: str
    title: str
    description: str
    default: bool


class CollectionAccess:
    """Answers "may this caller read that collection?" from the database (read fresh on
    each call: a grant or a revocation counts from the next request, on every replica)."""

    def __init__(
        self, db: Database, default: str, on_refused: Callable[[str], None] | None = None
    ) -> None:
        self.db = db
        self.default = default  # vectors.collection: what a question without one asks
        # Told of each refusal (the collection's name): the server counts them.
        self.on_refused = on_refused

    def readable(self, caller: Identity | None) -> list[CollectionInfo]:
        """The collections the caller may read, the default first, then by name."""
        with self.db.session() as session:
            every = {c.name: c for c in rows.registered(session)}
            if self.default not in every:  # a store no server has started on yet
                every[self.default] = rows.Collection(name=self.default, title="", description="")
            if caller is None or (caller.collections is None and caller.allows("admin")):
                names = set(every)
            elif caller.collections is not None:
                names = set(caller.collections) & set(every)
            else:
                names = _granted(session, caller, rows.CollectionReader)
                names |= _granted(session, caller, rows.CollectionOwner)
            infos = [
                CollectionInfo(n, every[n].title, every[n].description, n == self.default)
                for n in names
            ]
        return sorted(infos, key=lambda c: (not c.default, c.name))

    def may_read(self, caller: Identity | None, name: str | None) -> bool:
        """Whether the caller may read `name` (None: the default collection)."""
        name = name or self.default
        allowed = any(c.name == name for c in self.readable(caller))
        if not allowed and self.on_refused is not None:
            self.on_refused(name)
        return allowed

    def owned(self, caller: Identity | None) -> set[str]:
        """The registered collections the caller owns (the rule in the module's doc)."""
        with self.db.session() as session:
            every = {c.name for c in rows.registered(session)}
            if caller is None or (caller.collections is None and caller.allows("admin")):
                return every
            if caller.collections is not None and caller.allows("admin"):
                return set(caller.collections) & every
            names = _granted(session, caller, rows.CollectionOwner)
            if caller.collections is not None:
                names &= set(caller.collections)
            return names & every

    def may_own(self, caller: Identity | None, name: str) -> bool:
        """Whether the caller owns `name` (may upload into it, change its sources)."""
        return name in self.owned(caller)

    def check(self, caller: Identity | None, name: str | None) -> str:
        """The collection's name (the default for None) if the caller may read it;
        CollectionNotFound otherwise."""
        name = name or self.default
        if not self.may_read(caller, name):
            raise CollectionNotFound(name)
        return name


def _granted(
    session: Session,
    caller: Identity,
    table: rows.GrantTable,
) -> set[str]:
    """The collections whose readers (or owners) name the caller: a person by their
    groups and id, a key by its id."""
    person = caller.kind == "user"
    return rows.granted_to(
        session,
        groups=caller.groups if person else frozenset(),
        user_id=caller.id if person else None,
        key_id=None if person else caller.id,
        table=table,
    )
