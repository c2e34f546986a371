"""The incremental ingest: discover files, skip the unchanged, replace the changed,
remove the deleted, and record what happened.

A run goes: find the files under the roots (ingest/discovery.py); for each, skip it if
its bytes are unchanged, else load it, put it through the quality gate
(ingest/quality_gate.py), chunk, embed and write it (ingest/index_writer.py); then the
run-wide checks; then remove the documents whose files are gone; then record the run.
The index writer holds the order of writes that lets a killed run converge on the next.
Loading and chunking, embedding, and writing run at the same time for consecutive files
(ingest/stages.py); writes stay in file order, in one thread.

A file that fails to load, or whose text is garbled, keeps its previous version: a
broken edit loses nothing. A file whose text duplicates a document already indexed (or
kept earlier in the run) is quarantined: not indexed, and its own previous version is
removed (see `_quarantine`). The stored text hash and signature of each document let
later runs compare new files with it without reloading it; rows from before they
existed get them on the next run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from app.settings import IngestSettings
from app.store.db import Database
from app.store.index_record import Chunking, EmbeddingIdentity, IndexRecord
from app.store.vectors import VectorStore
from ingest.chunking import Chunker, embedding_text
from ingest.discovery import SourceFile, discover
from ingest.document import ExtractLimits, LoadError
from ingest.index_writer import IndexEntry, IndexWriter, StoredDocument
from ingest.loaders import load_file
from ingest.mass_change import MassChange, guard_mass_change
from ingest.quality import Finding, SeenDocuments
from ingest.quality_gate import QualityGate
from ingest.stages import FileStep, run_overlapped, run_sequential
from ingest.summary import IngestSummary, finish_run, start_run


class EmbeddingModel(Protocol):
    """What ingest needs of the embedder."""

    name: str
    identity: EmbeddingIdentity  # what a collection's record names (app/store/index_record.py)

    def embed(self, texts: list[str]) -> list[list[float]]: ...

    def count_tokens(self, texts: list[str]) -> list[int]: ...

    def variant_for(self, record: IndexRecord | None, *, new: bool = False) -> EmbeddingModel:
        """The variant (fp32, int8) that a collection with this record (or a `new`
        one) is embedded with: app/llm/embedder.py."""
        ...


# Called after each file with (source, outcome, chunks written).
ProgressCallback = Callable[[str, str, int], None]


@dataclass(frozen=True)
class Listing:
    """The files of a run when a source found them rather than the folder walk: a git
    checkout or a website mirror (ingest/sources). `changed`, when known (the files a
    commit range touched), spares reading the others: an indexed file outside it is
    taken as unchanged without hashing it. `findings` are the source's own (pages
    refused by robots.txt, limits reached), stored with the run's."""

    files: list[SourceFile]
    unsupported: list[Path] = field(default_factory=list)
    changed: frozenset[Path] | None = None
    findings: list[Finding] = field(default_factory=list)


@dataclass
class _RunState:
    """What one run carries from file to file."""

    summary: IngestSummary
    index: IndexWriter
    known: dict[str, StoredDocument]  # documents stored under the run's roots, by path
    gone: set[str]  # paths of known documents whose files are no longer there
    gate: QualityGate
    embedder: EmbeddingModel  # the variant the collection is built with
    changed: frozenset[Path] | None = None  # see Listing
    released: frozenset[Path] = frozenset()  # let in though duplicates (see run)


def _seen_documents(stored: dict[str, StoredDocument], gone: set[str]) -> SeenDocuments:
    """The collection's indexed documents, less those the run will delete (no originals)."""
    seen = SeenDocuments()
    for doc in stored.values():
        if doc.status == "indexed" and doc.text_hash is not None and doc.path not in gone:
            seen.add(doc.path, doc.source, doc.text_hash, doc.signature or [])
    return seen


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
        mass_change_share: float = 1.0,
        mass_change_min_documents: int = 1,
        limits: ExtractLimits | None = None,
        overlap_stages: bool = True,
        write_chunks: int = 256,
    ) -> None:
        self.db = db
        self.vectors = vectors
        self.embedder = embedder
        self.chunker = Chunker(
            embedder.count_tokens, max_tokens=chunk_tokens, overlap=chunk_overlap
        )
        self.chunking = Chunking(chunk_tokens, chunk_overlap)
        self.max_file_bytes = max_file_bytes
        self.exclude = tuple(exclude)
        self.mass_change_share = mass_change_share
        self.mass_change_min_documents = mass_change_min_documents
        self.limits = limits or ExtractLimits()
        self.overlap_stages = overlap_stages  # see ingest/stages.py
        self.write_chunks = write_chunks  # new file versions written in one go

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
            mass_change_share=settings.mass_change_share,
            mass_change_min_documents=settings.mass_change_min_documents,
            limits=ExtractLimits(
                max_file_chars=settings.max_file_chars,
                max_page_chars=settings.max_page_chars,
                timeout_s=settings.extract_timeout_s,
                ocr=settings.ocr,
                ocr_languages=settings.ocr_languages,
                ocr_page_timeout_s=settings.ocr_page_timeout_s,
            ),
            overlap_stages=settings.overlap_stages,
            write_chunks=settings.write_chunks,
        )

    def run(
        self,
        roots: list[Path],
        collection: str,
        *,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        on_start: Callable[[int], None] | None = None,
        allow_mass_change: bool = False,
        listing: Listing | None = None,
        release: frozenset[Path] = frozenset(),
    ) -> IngestSummary:
        """Bring the collection in line with the files under `roots` (those `listing`
        names, when given; else those the folder walk finds).

        MassChange, before anything is written, when the run would delete or replace
        more of the collection than `mass_change_share` (unless `allow_mass_change`).
        A file in `release` is indexed even if it duplicates another (ingest/quarantine.py).
        """
        missing = [str(r) for r in roots if not r.exists()]
        if missing:
            raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")
        if not dry_run and self.vectors is None:
            raise ValueError("a vector store is needed unless this is a dry run")
        embedder = self.embedder
        if self.vectors is not None:
            # Chunks of another model or chunking must not join the collection's
            # (EmbeddingMismatch, naming both); a new collection records this one.
            target = self.vectors.target(collection)
            embedder = embedder.variant_for(target.record, new=target.count == 0)
            self.vectors.check_model(
                collection, embedder.identity, self.chunking, adopt=not dry_run
            )
        started = time.perf_counter()
        summary = IngestSummary(
            collection=collection, dry_run=dry_run, model=embedder.identity.describe()
        )
        if listing is None:
            files, unsupported = discover(roots, self.exclude)
        else:
            files, unsupported = listing.files, listing.unsupported
            summary.findings += listing.findings
        summary.skipped = len(unsupported)
        state = self._begin(summary, roots, files, embedder)
        state.changed = listing.changed if listing is not None else None
        state.released = release
        if on_start:
            on_start(len(files))
        try:
            if not (dry_run or allow_mass_change):
                guard_mass_change(
                    self.db,
                    summary.collection,
                    files,
                    state.known,
                    state.gone,
                    state.changed,
                    share=self.mass_change_share,
                    min_documents=self.mass_change_min_documents,
                    content_hash=self._content_hash,
                )
            self._process(files, state, progress)
            began = time.perf_counter()
            summary.findings += state.gate.finish()
            summary.timed("checks", began)
            for path in sorted(state.gone):
                if not dry_run:
                    state.index.remove(state.known[path])
                summary.deleted += 1
                if progress:
                    progress(path, "deleted", 0)
            summary.status = "partial" if summary.partial else "completed"
        except MassChange:
            summary.status = "refused"
            raise
        except BaseException:
            summary.status = "interrupted"
            raise
        finally:
            summary.seconds = time.perf_counter() - started
            finish_run(self.db, summary)
        return summary

    def _begin(
        self,
        summary: IngestSummary,
        roots: list[Path],
        files: list[SourceFile],
        embedder: EmbeddingModel,
    ) -> _RunState:
        """What the collection holds under the roots, what is gone, and the run recorded."""
        collection = summary.collection
        resolved = [r.expanduser().resolve() for r in roots]
        index = IndexWriter(self.db, None if summary.dry_run else self.vectors, collection)
        stored = index.stored_documents()
        known = {
            path: doc
            for path, doc in stored.items()
            if any(Path(path) == r or Path(path).is_relative_to(r) for r in resolved)
        }
        gone = set(known) - {str(f.path) for f in files}
        gate = QualityGate(_seen_documents(stored, gone))
        summary.run_id = start_run(self.db, collection, resolved, summary.dry_run)
        return _RunState(summary, index, known, gone, gate, embedder)

    def _process(
        self, files: list[SourceFile], state: _RunState, progress: ProgressCallback | None
    ) -> None:
        """Every file through prepare, embed and finish (ingest/stages.py)."""

        def embed(texts: list[str]) -> list[list[float]]:
            began = time.perf_counter()
            embeddings = state.embedder.embed(texts)
            state.summary.timed("embed", began)
            return embeddings

        # New versions of files are written a few at a time (IndexWriter.write_many), in
        # the files' order: other writes go after the files waiting before them, and a
        # file is reported done once everything before it is written.
        waiting: list[FileStep] = []

        def done(step: FileStep) -> None:
            summary = state.summary
            setattr(summary, step.outcome, getattr(summary, step.outcome) + 1)
            summary.chunks_written += step.chunks
            if progress:
                progress(step.source, step.outcome, step.chunks)

        def flush() -> None:
            batch = waiting[:]
            waiting.clear()  # a write that fails is not tried again by the run's end
            entries = [replace(s.entry, embeddings=s.embeddings) for s in batch if s.entry]
            if entries:
                began = time.perf_counter()
                state.index.write_many(entries)
                state.summary.timed("store", began)
            for step in batch:
                done(step)

        def finish(step: FileStep) -> None:
            if step.write is not None:
                flush()
                began = time.perf_counter()
                step.write()
                state.summary.timed("store", began)
            if step.entry is None and not waiting:
                done(step)
                return
            waiting.append(step)
            if sum(s.chunks for s in waiting) >= self.write_chunks:
                flush()

        run = run_overlapped if self.overlap_stages else run_sequential
        try:
            run(files, lambda file: self._prepare(file, state), embed, finish)
        finally:
            flush()  # what was finished before an error is kept

    def _prepare(self, file: SourceFile, state: _RunState) -> FileStep:
        """One file up to embedding: skipped if unchanged, else loaded, checked and
        chunked. Writes nothing (overlapped, this runs ahead of the writes): what is to
        be written is in the step."""
        path = str(file.path)
        summary = state.summary
        previous = state.known.get(path)
        if (
            state.changed is not None
            and file.path not in state.changed
            and previous is not None
            and previous.status == "indexed"
            and previous.text_hash is not None
        ):
            return FileStep(file.source, "unchanged")
        try:
            content_hash = self._content_hash(file)
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
            return FileStep(file.source, "unchanged")
        began = time.perf_counter()
        try:
            doc = load_file(file.path, self.limits)
        except LoadError as exc:
            return self._fail(file, summary, str(exc))
        except Exception as exc:  # a loader bug must not stop the other files
            return self._fail(file, summary, f"could not be parsed: {type(exc).__name__}: {exc}")
        summary.timed("load", began)

        began = time.perf_counter()
        verdict = state.gate.check(path, file.source, doc)
        summary.timed("checks", began)
        rejection = verdict.rejection
        if rejection is not None and rejection.check == "duplicate":
            if file.path not in state.released:
                return self._quarantine(file, rejection, state)
            # An admin released it: indexed, the finding kept as a warning.
            kept = replace(rejection, severity="warning", reason="released: " + rejection.reason)
            findings = [kept if f is rejection else f for f in verdict.findings]
            verdict = replace(verdict, findings=findings)
            rejection = verdict.rejection
        if rejection is not None:  # garbled text: the file's own content is broken
            return self._fail(file, summary, rejection.reason, rejection.check)
        summary.findings += [replace(f, source=file.source) for f in verdict.findings]

        if unchanged and previous is not None:
            # Indexed before the quality checks existed: its chunks are current, only its
            # text hash and signature are missing (until they are written, each run loads
            # the file again).
            step = FileStep(file.source, "unchanged")
            if not summary.dry_run:
                known, fingerprints = previous, verdict.fingerprints
                step.write = lambda: state.index.fill_in_fingerprints(known, fingerprints)
            return step

        began = time.perf_counter()
        drafts = self.chunker.chunk(doc)
        summary.timed("chunk", began)
        drafts, chunk_findings = state.gate.check_chunks(drafts)
        summary.findings += [replace(f, source=file.source) for f in chunk_findings]
        step = FileStep(file.source, "changed" if previous else "new", chunks=len(drafts))
        if not summary.dry_run:
            step.texts = [embedding_text(doc.title, d.section, d.text) for d in drafts]
            step.entry = IndexEntry(
                path, file.source, doc.title, content_hash, verdict.fingerprints, drafts, []
            )
        return step

    def _content_hash(self, file: SourceFile) -> str:
        """sha256 of the file's bytes; LoadError if it is over the size limit."""
        size = file.path.stat().st_size
        if size > self.max_file_bytes:
            raise LoadError(
                f"file too large ({size / 1e6:.1f} MB; the limit is "
                f"{self.max_file_bytes / 1e6:.1f} MB)"
            )
        return hashlib.sha256(file.path.read_bytes()).hexdigest()

    def _fail(
        self, file: SourceFile, summary: IngestSummary, reason: str, check: str = "load"
    ) -> FileStep:
        # A file that was indexed before keeps its old chunks: a broken edit loses nothing.
        summary.findings.append(Finding(check, "error", reason, file.source))
        return FileStep(file.source, "failed")

    def _quarantine(self, file: SourceFile, finding: Finding, state: _RunState) -> FileStep:
        """Keep a file out of the index, and remove the version of it indexed before.

        Unlike a load failure, where the previous version stays (a broken edit loses
        nothing), a quarantined file loses its previous version too: a file that became
        a duplicate of another would otherwise be served twice, its old text under its
        name and the same text under the original's.
        """
        state.summary.findings.append(replace(finding, source=file.source))
        step = FileStep(file.source, "quarantined")
        previous = state.known.get(str(file.path))
        if previous is not None and not state.summary.dry_run:
            step.write = lambda: state.index.withdraw(previous)
        return step
