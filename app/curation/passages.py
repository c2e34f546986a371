"""Passages as curated examples keep them: the chunk's text, where it came from, and the
content hash of its document at the time, taken from the SQL store (never the vectors)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.models import Chunk, Document

Passage = dict[str, Any]
_WORDS = re.compile(r"\w+")


def words(text: str) -> set[str]:
    """The lowercased words of a text, for comparing passages without a model."""
    return set(_WORDS.findall(text.lower()))


def overlap(a: set[str], b: set[str]) -> float:
    """Jaccard similarity of two word sets (0 when both are empty)."""
    return len(a & b) / len(a | b) if a or b else 0.0


def passage(document: Document, chunk: Chunk) -> Passage:
    """One chunk of a document as an example stores it."""
    return {
        "text": chunk.text,
        "source": document.source,
        "title": document.title,
        "section": chunk.section,
        "document_id": document.id,
        "chunk": chunk.ord,
        "content_hash": document.content_hash,
    }


def from_citations(session: Session, citations: list[dict[str, Any]]) -> list[Passage]:
    """The passages an answer cited, their text read from the chunks table. A cited
    document that is gone keeps its place with empty text and no hash: the example is
    then stale until a reviewer drops it (there is nothing to refresh it from)."""
    taken: list[Passage] = []
    for citation in citations:
        document_id = str(citation.get("document_id") or "")
        document = session.get(Document, document_id) if document_id else None
        ord_ = int(citation.get("chunk") or 0)
        chunk = (
            session.scalar(select(Chunk).where(Chunk.document_id == document_id, Chunk.ord == ord_))
            if document is not None
            else None
        )
        if document is not None and chunk is not None:
            taken.append(passage(document, chunk))
            continue
        taken.append(
            {
                "text": str(citation.get("text") or ""),
                "source": str(citation.get("source") or ""),
                "title": str(citation.get("title") or ""),
                "section": str(citation.get("section") or ""),
                "document_id": document_id or None,
                "chunk": ord_,
                "content_hash": None,
            }
        )
    return taken


def find_document(
    session: Session, collection: str, source: str, document_id: str | None = None
) -> Document | None:
    """The document a passage names: by id, else by its source in the collection (a file
    deleted and ingested again gets a new id), else by a path ending in `source`."""
    if document_id:
        found = session.get(Document, document_id)
        if found is not None:
            return found
    if not source:
        return None
    in_collection = select(Document).where(Document.collection == collection)
    found = session.scalar(in_collection.where(Document.source == source))
    if found is not None:
        return found
    suffix = "/" + source.lstrip("/")
    candidates = session.scalars(
        in_collection.where(Document.path.endswith(suffix) | Document.source.endswith(suffix))
    ).all()
    return candidates[0] if len(candidates) == 1 else None


def best_chunk(document: Document, like: str, section: str = "") -> Chunk | None:
    """The chunk of `document` whose words overlap `like` most (its section breaks ties)."""
    if not document.chunks:
        return None
    target = words(like)
    return max(
        document.chunks,
        key=lambda c: (overlap(words(c.text), target), c.section == section, -c.ord),
    )
