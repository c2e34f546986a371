"""Finding an API key's row by the one argument the CLI and the API take: id or name."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.models import ApiKey

# A key's id: 12 hex digits, chosen by docchat (secrets.token_hex(6) in app/security/keys.py).
KEY_ID = re.compile(r"[0-9a-f]{12}")


def find_key(session: Session, name_or_id: str) -> ApiKey | None:
    """A key by id, else by name (revoked ones too). Ids come first, so a name shaped
    like an id (refused since; an older database may hold one) never shadows the key
    that has that id."""
    if KEY_ID.fullmatch(name_or_id):
        row = session.get(ApiKey, name_or_id)
        if row is not None:
            return row
    return session.scalar(select(ApiKey).where(ApiKey.name == name_or_id))
