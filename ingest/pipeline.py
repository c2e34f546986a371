"""The incremental ingest: discover files, skip the unchanged, replace the changed,
remove the deleted, and record what happened.

Crash safety comes from the order of writes. For each file: (1) its SQL row is marked
"pending" with the new hash, (2) the new chunks are upserted under ids derived from
their content, (3) the file's chunks of any other hash are deleted from the vectors,
(4) the SQL chunks are replaced and the row marked "indexed", in one transaction.
A run killed anywhere leaves a row that is not "indexed" (or no row), which the next
run processes again; every step is idempotent, so it converges to the same state.

Every loaded document goes through the checks of ingest/quality.py. A file whose text
duplicates a document already indexed (or kept earlier in the run) is quarantined: not
indexed, and its own previous version is removed, row last (see `_quarantine`). The
stored text hash and signature of each document let later runs compare new files with
it without reloading it; rows from before they existed get them on the next run.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, select

from app.settings import IngestSettings
from app.store.db import Database
from app.store.models import OUTCOMES, Chunk, Document, IngestIssue, IngestRun, utcnow
from app.store.vectors import VectorStore
from ingest.chunking import ChunkDraft, Chunker, embedding_text
from ingest.document import LoadedDocument, LoadError
from ingest.loaders import SUPPORTED_SUFFIXES, load_file
from ingest.quality import (
    Issue,
    SeenDocuments,
    check_boilerplate,
    check_chunks,
    check_document,
    check_duplicate,
    check_near_duplicate,
    paragraph_fingerprints,
    signature,
    text_hash,
)


class EmbeddingModel(Protocol):
    """What ingest needs of the embedder."""

    name: str

    def embed(self, texts: list[str]) -> list[list[float]]: ...

    def count_tokens(self, texts: list[str]) -> list[int]: ...


@dataclass(frozen=True)
class SourceFile:
    """A file found under one of the ingest roots."""

    path: Path  # absolute, resolved
    source: str  # shown in citations: relative to the folder the user named


@dataclass
class Finding:
    """A problem with one file: an error keeps it out of the index, a warning is reported."""

    source: str
    severity: str
    reason: str
    check: str  # which check found it: one of ingest.quality.CHECKS


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


@dataclass
class IngestSummary:
    """The outcome of a run, as printed and as stored."""

    run_id: int | None = None
    collection: str = ""
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    skipped: int = 0
    # Kept out of the index by a check (an exact duplicate): not a failure of the run.
    quarantined: int = 0
    chunks_written: int = 0
    seconds: float = 0.0
    status: str = "running"
    dry_run: bool = False
    findings: list[Finding] = field(default_factory=list)
    # Seconds spent per stage (load, chunk, embed, store): where a slow run goes.
    stages: dict[str, float] = field(default_factory=dict)

    def timed(self, stage: str, started: float) -> None:
        """Add the time since `started` (a perf_counter value) to a stage."""
        self.stages[stage] = self.stages.get(stage, 0.0) + time.perf_counter() - started

    @property
    def partial(self) -> bool:
        """Some files failed; the rest were ingested."""
        return self.failed > 0


# Called after each file with (source, outcome, chunks written).
ProgressCallback = Callable[[str, str, int], None]


def excluded(relative: str, patterns: Sequence[str]) -> bool:
    """Whether a path (relative to its root) matches a pattern, at any depth."""
    return any(fnmatch(relative, p) or fnmatch(relative, "*/" + p) for p in patterns)


def discover(roots: list[Path], exclude: Sequence[str] = ()) -> tuple[list[SourceFile], list[Path]]:
    """Supported files under the roots, and the unsupported ones (skipped).

    Links are not followed out of a root: a link may point anywhere on the machine.
    Hidden files and folders (.git, .venv...) are left out, and so are paths matching
    an `exclude` glob (relative to the root, e.g. "_sources/*").
    """
    found: dict[Path, SourceFile] = {}
    unsupported: list[Path] = []
    for root in roots:
        root = root.expanduser().resolve()
        if root.is_file():
            candidates: Iterator[tuple[Path, Path]] = iter([(root, root.parent)])
        else:
            candidates = ((p, root.parent) for p in _walk(root))
        for path, base in candidates:
            if path != root and excluded(path.relative_to(root).as_posix(), exclude):
                continue
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                unsupported.append(path)
                continue
            found.setdefault(path, SourceFile(path, path.relative_to(base).as_posix()))
    return sorted(found.values(), key=lambda f: f.source), unsupported


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            real = path.resolve()
            # A link inside the tree is the file it points to (counted once).
            if real.is_relative_to(root) and real.is_file():
                yield real


@dataclass
class _RunState:
    """What one run carries from file to file."""

    collection: str
    summary: IngestSummary
    known: dict[str, StoredDocument]  # documents stored under the run's roots, by path
    seen: SeenDocuments  # what each loaded document is compared with
    # Paragraph fingerprints and sources of the documents loaded and kept, by path.
    paragraphs: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


def _seen_documents(stored: dict[str, StoredDocument], gone: set[str]) -> SeenDocuments:
    """The collection's indexed documents, less those the run will delete (no originals)."""
    seen = SeenDocuments()
    for doc in stored.values():
        if doc.status == "indexed" and doc.text_hash is not None and doc.path not in gone:
            seen.add(doc.path, doc.source, doc.text_hash, doc.signature or [])
    return seen


def _finding(source: str, issue: Issue) -> Finding:
    return Finding(source, issue.severity, issue.reason, issue.check)


def chunk_id(collection: str, path: str, draft: ChunkDraft) -> str:
    """Deterministic id: the same chunk of the same file always gets the same id."""
    key = f"{collection}\0{path}\0{draft.ord}\0{draft.content_hash}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


class Ingestor:
    """Runs ingests of folders into one collection of the stores."""

    def __init__(
        self,
        db: Database,
        vectors: VectorStore | None,
        embedder: EmbeddingModel,
        *,
        chunk_tokens: int,
        chunk_overlap: int,
        max_file_bytes: int,
        exclude: Sequence[str] = (),
    ) -> None:
        self.db = db
        self.vectors = vectors
        self.embedder = embedder
        self.chunker = Chunker(
            embedder.count_tokens, max_tokens=chunk_tokens, overlap=chunk_overlap
        )
        self.max_file_bytes = max_file_bytes
        self.exclude = tuple(exclude)

    @classmethod
    def configured(
        cls,
        settings: IngestSettings,
        db: Database,
        vectors: VectorStore | None,
        embedder: EmbeddingModel,
        *,
        max_file_bytes: int | None = None,
        extra_exclude: Sequence[str] = (),
    ) -> Ingestor:
        """An ingestor set up as the settings say (the size cap may be tighter)."""
        return cls(
            db,
            vectors,
            embedder,
            chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap,
            max_file_bytes=max_file_bytes or int(settings.max_file_mb * 1_000_000),
            exclude=[*settings.exclude, *extra_exclude],
        )

    def run(
        self,
        roots: list[Path],
        collection: str,
        *,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> IngestSummary:
        """Bring the collection in line with the files under `roots`."""
        missing = [str(r) for r in roots if not r.exists()]
        if missing:
            raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")
        if not dry_run and self.vectors is None:
            raise ValueError("a vector store is needed unless this is a dry run")
        started = time.perf_counter()
        summary = IngestSummary(collection=collection, dry_run=dry_run)
        files, unsupported = discover(roots, self.exclude)
        summary.skipped = len(unsupported)
        resolved_roots = [r.expanduser().resolve() for r in roots]
        stored = self._stored_documents(collection)
        known = {
            path: doc
            for path, doc in stored.items()
            if any(Path(path) == r or Path(path).is_relative_to(r) for r in resolved_roots)
        }
        present = {str(f.path) for f in files}
        gone = set(known) - present
        state = _RunState(collection, summary, known, _seen_documents(stored, gone))
        summary.run_id = self._start_run(collection, resolved_roots, dry_run)
        if on_start:
            on_start(len(files))
        try:
            for file in files:
                outcome, written = self._ingest_file(file, state)
                if progress:
                    progress(file.source, outcome, written)
            began = time.perf_counter()
            for path, issue in check_boilerplate(state.paragraphs).items():
                summary.findings.append(_finding(state.sources[path], issue))
            summary.timed("checks", began)
            for path in sorted(gone):
                if not dry_run:
                    self._delete_document(collection, known[path].id, path)
                summary.deleted += 1
                if progress:
                    progress(path, "deleted", 0)
            summary.status = "partial" if summary.partial else "completed"
        except BaseException:
            summary.status = "interrupted"
            raise
        finally:
            summary.seconds = time.perf_counter() - started
            self._finish_run(summary)
        return summary

    def _stored_documents(self, collection: str) -> dict[str, StoredDocument]:
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
                ).where(Document.collection == collection)
            ).all()
        return {row.path: StoredDocument(*row) for row in rows}

    def _ingest_file(self, file: SourceFile, state: _RunState) -> tuple[str, int]:
        path = str(file.path)
        summary = state.summary
        previous = state.known.get(path)
        try:
            size = file.path.stat().st_size
            if size > self.max_file_bytes:
                raise LoadError(
                    f"file too large ({size / 1e6:.1f} MB; the limit is "
                    f"{self.max_file_bytes / 1e6:.1f} MB)"
                )
            content_hash = hashlib.sha256(file.path.read_bytes()).hexdigest()
        except OSError as exc:
            return self._fail(file, summary, f"cannot read file: {exc.strerror or exc}")
        except LoadError as exc:
            return self._fail(file, summary, str(exc))
        unchanged = (
            previous is not None
            and previous.content_hash == content_hash
            and previous.status == "indexed"
        )
        if unchanged and previous is not None and previous.text_hash is not None:
            summary.unchanged += 1
            return "unchanged", 0
        began = time.perf_counter()
        try:
            doc = load_file(file.path)
        except LoadError as exc:
            return self._fail(file, summary, str(exc))
        except Exception as exc:  # a loader bug must not stop the other files
            return self._fail(file, summary, f"could not be parsed: {type(exc).__name__}: {exc}")
        summary.timed("load", began)

        began = time.perf_counter()
        issues = check_document(doc)
        digest, sig = text_hash(doc.text), signature(doc.text)
        duplicate = check_duplicate(path, digest, state.seen)
        near = None if duplicate else check_near_duplicate(path, sig, state.seen)
        summary.timed("checks", began)
        error = next((i for i in issues if i.severity == "error"), None)
        if error is not None:  # garbled text: the file's own content is broken
            return self._fail(file, summary, error.reason, error.check)
        if duplicate is not None:
            return self._quarantine(file, duplicate, state)
        summary.findings += [_finding(file.source, i) for i in [*issues, *([near] if near else [])]]
        state.seen.add(path, file.source, digest, sig)
        state.paragraphs[path] = paragraph_fingerprints(doc)
        state.sources[path] = file.source

        if unchanged and previous is not None:
            # Indexed before the quality checks existed: its chunks are current, only its
            # text hash and signature are missing (until they are written, each run loads
            # the file again).
            if not summary.dry_run:
                self._fill_in_fingerprints(previous.id, digest, sig)
            summary.unchanged += 1
            return "unchanged", 0

        began = time.perf_counter()
        drafts = self.chunker.chunk(doc)
        summary.timed("chunk", began)
        summary.findings += [_finding(file.source, i) for i in check_chunks(drafts)]
        outcome = "changed" if previous else "new"
        if not summary.dry_run:
            fingerprints = (digest, sig)
            self._store(
                file, state.collection, content_hash, fingerprints, doc, drafts, previous, summary
            )
        setattr(summary, outcome, getattr(summary, outcome) + 1)
        summary.chunks_written += len(drafts)
        return outcome, len(drafts)

    def _fail(
        self, file: SourceFile, summary: IngestSummary, reason: str, check: str = "load"
    ) -> tuple[str, int]:
        # A file that was indexed before keeps its old chunks: a broken edit loses nothing.
        summary.failed += 1
        summary.findings.append(Finding(file.source, "error", reason, check))
        return "failed", 0

    def _quarantine(self, file: SourceFile, issue: Issue, state: _RunState) -> tuple[str, int]:
        """Keep a file out of the index, and remove the version of it indexed before.

        Unlike a load failure, where the previous version stays (a broken edit loses
        nothing), a quarantined file loses its previous version too: a file that became
        a duplicate of another would otherwise be served twice, its old text under its
        name and the same text under the original's. The row is marked pending before
        the vectors go, so a run killed in between leaves a row the next run redoes.
        """
        path = str(file.path)
        state.summary.quarantined += 1
        state.summary.findings.append(_finding(file.source, issue))
        state.seen.remove(path)
        previous = state.known.get(path)
        if previous is not None and not state.summary.dry_run:
            with self.db.session() as session:
                session.get_one(Document, previous.id).status = "pending"
            self._delete_document(state.collection, previous.id, path)
        return "quarantined", 0

    def _fill_in_fingerprints(self, doc_id: str, digest: str, sig: list[int]) -> None:
        with self.db.session() as session:
            row = session.get_one(Document, doc_id)
            row.text_hash, row.signature = digest, sig

    def _store(
        self,
        file: SourceFile,
        collection: str,
        content_hash: str,
        fingerprints: tuple[str, list[int]],
        doc: LoadedDocument,
        drafts: list[ChunkDraft],
        previous: StoredDocument | None,
        summary: IngestSummary,
    ) -> None:
        assert self.vectors is not None
        path = str(file.path)
        began = time.perf_counter()
        with self.db.session() as session:
            row = session.get(Document, previous.id) if previous else None
            if row is None:
                row = Document(collection=collection, path=path)
                session.add(row)
            row.source, row.title = file.source, doc.title[:512]
            row.content_hash, row.status = content_hash, "pending"
            session.flush()
            doc_id = row.id
        ids = [chunk_id(collection, path, d) for d in drafts]
        texts = [embedding_text(doc.title, d.section, d.text) for d in drafts]
        summary.timed("store", began)
        began = time.perf_counter()
        vectors = self.embedder.embed(texts)
        summary.timed("embed", began)
        began = time.perf_counter()
        metadatas = [
            {
                "path": path,
                "source": file.source,
                "title": doc.title,
                "section": d.section,
                "document_id": doc_id,
                "ord": d.ord,
                "doc_hash": content_hash,
                "n_tokens": d.n_tokens,
            }
            for d in drafts
        ]
        self.vectors.upsert(collection, ids, vectors, [d.text for d in drafts], metadatas)
        self.vectors.delete(
            collection, {"$and": [{"path": path}, {"doc_hash": {"$ne": content_hash}}]}
        )
        with self.db.session() as session:
            session.execute(delete(Chunk).where(Chunk.document_id == doc_id))
            session.add_all(
                Chunk(
                    id=chunk_ids,
                    document_id=doc_id,
                    ord=d.ord,
                    section=d.section[:512],
                    text=d.text,
                    content_hash=d.content_hash,
                    n_tokens=d.n_tokens,
                )
                for chunk_ids, d in zip(ids, drafts, strict=True)
            )
            row = session.get_one(Document, doc_id)
            row.status, row.n_chunks = "indexed", len(drafts)
            row.text_hash, row.signature = fingerprints
        summary.timed("store", began)

    def _delete_document(self, collection: str, doc_id: str, path: str) -> None:
        assert self.vectors is not None
        self.vectors.delete(collection, {"path": path})
        with self.db.session() as session:
            session.execute(delete(Document).where(Document.id == doc_id))

    def _start_run(self, collection: str, roots: list[Path], dry_run: bool) -> int:
        with self.db.session() as session:
            run = IngestRun(
                collection=collection, roots="\n".join(map(str, roots)), dry_run=dry_run
            )
            session.add(run)
            session.flush()
            return run.id

    def _finish_run(self, summary: IngestSummary) -> None:
        with self.db.session() as session:
            run = session.get_one(IngestRun, summary.run_id)
            for name in OUTCOMES:
                setattr(run, name, getattr(summary, name))
            run.chunks_written, run.seconds = summary.chunks_written, summary.seconds
            run.status, run.finished_at = summary.status, utcnow()
            run.issues = [
                IngestIssue(path=f.source, severity=f.severity, reason=f.reason, check=f.check)
                for f in summary.findings
            ]
