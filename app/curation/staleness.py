"""Stale examples: a passage whose document changed (its content hash no longer matches)
or went away since the example was approved. A reviewer refreshes or drops them."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.curation.passages import find_document
from app.store.models import CuratedExample


def reasons(session: Session, example: CuratedExample) -> list[str]:
    """Why the example is stale, one line per changed or missing source (empty: it is not).
    A passage given as free text (no document, no hash) never goes stale."""
    found: list[str] = []
    for p in example.passages:
        if not p.get("document_id") and not p.get("content_hash"):
            continue
        source = p.get("source") or p.get("document_id") or "?"
        document = find_document(
            session, example.collection, p.get("source") or "", p.get("document_id")
        )
        if document is None:
            found.append(f"{source}: the document is gone")
        elif document.content_hash != p.get("content_hash"):
            found.append(f"{source}: the document changed since the example was approved")
    return list(dict.fromkeys(found))


def mark(session: Session, example: CuratedExample) -> bool:
    """Set the example's status from its sources (a dropped one is left alone); True
    when it is stale."""
    if example.status == "dropped":
        return False
    found = reasons(session, example)
    status, reason = ("stale", "; ".join(found)) if found else ("active", None)
    if (example.status, example.stale_reason) != (status, reason):
        example.status, example.stale_reason = status, reason
    return bool(found)


def check(
    session: Session, examples: Iterable[CuratedExample] | None = None
) -> list[CuratedExample]:
    """Mark every example that is not dropped (or those given); the stale ones."""
    if examples is None:
        examples = session.scalars(
            select(CuratedExample).where(CuratedExample.status != "dropped")
        ).all()
    stale = [e for e in examples if mark(session, e)]
    session.flush()
    return stale
