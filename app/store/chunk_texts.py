"""Read stored chunks by position in their document (for widening a passage)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.store.db import Database
from app.store.models import Chunk, Document


@dataclass(frozen=True)
class StoredChunk:
    """One chunk of an indexed document, as the SQL chunks table holds it."""

    id: str
    ord: int
    section: str
    text: str


def chunks_around(db: Database, document_id: str, first: int, last: int) -> list[StoredChunk]:
    """The document's chunks with `first <= ord <= last`, in order (none unless the
    document is indexed: one being rewritten has no trustworthy neighbours)."""
    with db.session() as session:
        rows = session.execute(
            select(Chunk.id, Chunk.ord, Chunk.section, Chunk.text)
            .join(Document, Document.id == Chunk.document_id)
            .where(
                Chunk.document_id == document_id,
                Document.status == "indexed",
                Chunk.ord >= first,
                Chunk.ord <= last,
            )
            .order_by(Chunk.ord)
        ).all()
    return [StoredChunk(r.id, r.ord, r.section, r.text) for r in rows]
