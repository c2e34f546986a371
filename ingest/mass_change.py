"""The mass-change guard: a run that would delete or replace more than
ingest.mass_change_share of a collection's documents stops before its first write
(a folder emptied by mistake, a wrong checkout), unless it is allowed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from app.store.db import Database
from app.store.models import Document
from ingest.discovery import SourceFile
from ingest.document import LoadError
from ingest.index_writer import StoredDocument


class MassChange(Exception):
    """A run would delete or replace more of a collection than its settings allow."""

    def __init__(
        self, collection: str, documents: int, deleted: int, replaced: int, share: float
    ) -> None:
        self.collection, self.documents = collection, documents
        self.deleted, self.replaced, self.share = deleted, replaced, share
        affected = deleted + replaced
        super().__init__(
            f"stopped before changing anything: this run would delete {deleted} and "
            f"replace {replaced} of the {documents} documents of collection "
            f"{collection!r} ({affected / documents:.0%}), more than "
            f"ingest.mass_change_share allows ({share:.0%}). Check the folder; if the "
            "change is meant, run again with --allow-mass-change."
        )


def guard_mass_change(
    db: Database,
    collection: str,
    files: list[SourceFile],
    known: dict[str, StoredDocument],
    gone: set[str],
    changed: frozenset[Path] | None,
    *,
    share: float,
    min_documents: int,
    content_hash: Callable[[SourceFile], str],
) -> None:
    """Raise MassChange if the run would delete (`gone`) or replace (files changed)
    more than `share` of the collection's documents, and at least `min_documents`.

    Runs before the first write. Deletions are known from the listing; replacements
    are counted by hashing (`content_hash`) the indexed files still there, and only
    when the deletions alone leave the limit within reach. A file that cannot be read
    keeps its previous version, so it is not counted. `known` are the documents
    stored under the run's roots by path; `changed`, when known, the only files that
    may differ (the others are taken as unchanged).
    """
    with db.session() as session:
        documents = session.scalar(
            select(func.count()).select_from(Document).where(Document.collection == collection)
        )
    if not documents:
        return
    limit = share * documents
    present = [
        (file, doc)
        for file in files
        if (doc := known.get(str(file.path))) is not None and doc.status == "indexed"
    ]
    deleted = len(gone)
    if deleted + len(present) <= limit or deleted + len(present) < min_documents:
        return
    replaced = 0
    for file, doc in present:
        if changed is not None and file.path not in changed:
            continue
        with contextlib.suppress(OSError, LoadError):
            replaced += content_hash(file) != doc.content_hash
    if deleted + replaced > limit and deleted + replaced >= min_documents:
        raise MassChange(collection, documents, deleted, replaced, share)
