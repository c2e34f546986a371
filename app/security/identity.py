"""Who is calling: an API key, or a person signed in through the OpenID provider (by a
session cookie or a bearer token), with what they may do (a scope) and their groups.

Every front reads the one Identity: the audit trail records its typed actor, a
conversation its owner, the rate limit counts per actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["chat", "ingest", "admin"]
SCOPES: tuple[Scope, ...] = ("chat", "ingest", "admin")
# Each scope includes the ones before it: an admin key may also chat and ingest.
SCOPE_LEVEL = {scope: level for level, scope in enumerate(SCOPES)}
Kind = Literal["key", "user"]
# How a person proved who they are on this request: the page's session cookie (whose
# changes need the CSRF token) or a bearer token from the provider.
Via = Literal["key", "session", "token"]


@dataclass(frozen=True)
class Identity:
    """A caller: an API key (its id, name and scope; never the key) or a signed-in
    person (docchat's user id, their name, the scope their groups give, the groups)."""

    key_id: str
    name: str
    scope: Scope
    kind: Kind = "key"
    groups: frozenset[str] = frozenset()
    via: Via = "key"
    # A key limited to some collections reads those and no other, whatever its scope
    # (None: not limited; a person is never limited here, their groups decide).
    collections: frozenset[str] | None = None

    @classmethod
    def user(
        cls, user_id: str, name: str, scope: Scope, groups: frozenset[str], via: Via
    ) -> Identity:
        """A signed-in person."""
        return cls(user_id, name, scope, "user", groups, via)

    @property
    def id(self) -> str:
        """The key's id or the user's id (docchat's, never the provider's subject)."""
        return self.key_id

    @property
    def actor(self) -> str:
        """Whom the audit trail records: `key:<id>` or `user:<id>`, never a chosen name."""
        return f"{self.kind}:{self.key_id}"

    @property
    def owner(self) -> str:
        """What a conversation records as its owner: a key's id as before, `u:<id>` for a
        person (the column holds 16 characters; a key id never has a colon)."""
        return self.key_id if self.kind == "key" else f"u:{self.key_id}"

    def allows(self, needed: Scope) -> bool:
        """Whether this caller's scope covers `needed`."""
        return SCOPE_LEVEL[self.scope] >= SCOPE_LEVEL[needed]


def may_read(caller: Identity | None, owner: str | None) -> bool:
    """Whether a caller may see a conversation: its owner or an admin (or auth off)."""
    return caller is None or caller.allows("admin") or owner == caller.owner
