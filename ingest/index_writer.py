"""The document index: each file's SQL rows (document and chunks) and its Chroma vectors.

Crash safety comes from the order of writes. For each file (or for a few files at
once, each step for all of them: write_many): (1) its SQL row is marked
"pending" with the new hash, (2) the new chunks are upserted under ids derived from
their content, (3) the file's chunks of any other hash are deleted from the vectors,
(4) the SQL chunks are replaced and the row marked "indexed", in one transaction.
A run killed anywhere leaves a row that is not "indexed" (or no row), which the next
run processes again; every step is idempotent, so it converges to the same state.
Removing a file goes vectors first, row last, so a row outlives its vectors, never the
reverse: what is left over is found again by the next run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, select

from app.store.db import Database
from app.store.models import Chunk, Document
from app.store.vectors import VectorStore
from ingest.chunking import ChunkDraft


@dataclass(frozen=True)
class StoredDocument:
    """A document row of the collection, as a run finds it."""

    id: str
    path: str
    source: str
    content_hash: str
    status: str
    text_hash: str | None  # None: stored before the quality checks, not yet filled in
    signature: list[int] | None


@dataclass(frozen=True)
class IndexEntry:
    """A file's new version, loaded, checked, chunked and embedded: what gets written."""

    path: str  # absolute: the file's identity across runs
    source: str
    title: str
    content_hash: str  # of the file's bytes: an unchanged file is skipped next time
    fingerprints: tuple[str, list[int]]  # text hash and signature, see ingest/quality.py
    chunks: list[ChunkDraft]
    embeddings: list[list[float]]  # one per chunk


def chunk_id(collection: str, path: str, draft: ChunkDraft) -> str:
    """Deterministic id: the same chunk of the same file always gets the same id."""
    key = f"{collection}\0{path}\0{draft.ord}\0{draft.content_hash}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


class IndexWriter:
    """Reads and writes one collection's documents in the order that survives a kill."""

    def __init__(self, db: Database, vectors: VectorStore | None, collection: str) -> None:
        self.db = db
        self.vectors = vectors  # None for a dry run, which reads but never writes
        self.collection = collection

    def stored_documents(self) -> dict[str, StoredDocument]:
        """Every document row of the collection, by path."""
        with self.db.session() as session:
            rows = session.execute(
                select(
                    Document.id,
                    Document.path,
                    Document.source,
                    Document.content_hash,
                    Document.status,
                    Document.text_hash,
                    Document.signature,
                ).where(Document.collection == self.collection)
            ).all()
        return {row.path: StoredDocument(*row) for row in rows}

    def write_many(self, entries: list[IndexEntry]) -> None:
        """Replace whatever the index holds of each file with its new version (steps 1
        to 4), each step for all of them in one transaction or call: a call to Chroma
        costs ~20 ms whatever it holds, so files of a few chunks each written one at a
        time went at a third of the speed of a hundred chunks a call. Killed in between,
        every file is where a write of it alone killed at that step would leave it."""
        if not entries:
            return
        vectors = self._vectors()
        doc_ids: list[str] = []
        with self.db.session() as session:
            for entry in entries:
                row = session.scalars(
                    select(Document).where(
                        Document.collection == self.collection, Document.path == entry.path
                    )
                ).one_or_none()
                if row is None:
                    row = Document(collection=self.collection, path=entry.path)
                    session.add(row)
                row.source, row.title = entry.source, entry.title[:512]
                row.content_hash, row.status = entry.content_hash, "pending"
                session.flush()
                doc_ids.append(row.id)
        ids: list[list[str]] = []  # each file's
        embeddings: list[list[float]] = []
        texts: list[str] = []
        metadatas: list[dict[str, object]] = []
        for entry, doc_id in zip(entries, doc_ids, strict=True):
            ids.append([chunk_id(self.collection, entry.path, d) for d in entry.chunks])
            embeddings += entry.embeddings
            texts += [d.text for d in entry.chunks]
            metadatas += [
                {
                    "path": entry.path,
                    "source": entry.source,
                    "title": entry.title,
                    "section": d.section,
                    "document_id": doc_id,
                    "ord": d.ord,
                    "doc_hash": entry.content_hash,
                    "n_tokens": d.n_tokens,
                }
                for d in entry.chunks
            ]
        flat = [id_ for file_ids in ids for id_ in file_ids]
        vectors.upsert(self.collection, flat, embeddings, texts, metadatas)
        for entry in entries:
            vectors.delete(
                self.collection,
                {"$and": [{"path": entry.path}, {"doc_hash": {"$ne": entry.content_hash}}]},
            )
        with self.db.session() as session:
            for entry, doc_id, chunk_ids in zip(entries, doc_ids, ids, strict=True):
                session.execute(delete(Chunk).where(Chunk.document_id == doc_id))
                session.add_all(
                    Chunk(
                        id=id_,
                        document_id=doc_id,
                        ord=d.ord,
                        section=d.section[:512],
                        text=d.text,
                        content_hash=d.content_hash,
                        n_tokens=d.n_tokens,
                    )
                    for id_, d in zip(chunk_ids, entry.chunks, strict=True)
                )
                row = session.get_one(Document, doc_id)
                row.status, row.n_chunks = "indexed", len(entry.chunks)
                row.text_hash, row.signature = entry.fingerprints

    def fill_in_fingerprints(
        self, doc: StoredDocument, fingerprints: tuple[str, list[int]]
    ) -> None:
        """Store the text hash and signature of a document indexed before they existed."""
        with self.db.session() as session:
            row = session.get_one(Document, doc.id)
            row.text_hash, row.signature = fingerprints

    def withdraw(self, doc: StoredDocument) -> None:
        """Remove a document whose file is still there (quarantined): pending first.

        Marked pending before its vectors go, so a run killed in between leaves a row
        that the next run redoes rather than one that claims to be indexed.
        """
        with self.db.session() as session:
            session.get_one(Document, doc.id).status = "pending"
        self.remove(doc)

    def remove(self, doc: StoredDocument) -> None:
        """Remove a document from the index: its vectors, then its row (and chunks)."""
        self._vectors().delete(self.collection, {"path": doc.path})
        with self.db.session() as session:
            session.execute(delete(Document).where(Document.id == doc.id))

    def _vectors(self) -> VectorStore:
        if self.vectors is None:
            raise RuntimeError("a dry run writes nothing")
        return self.vectors
