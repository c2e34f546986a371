"""The quality checks of one run, in the order a run applies them.

ingest/quality.py holds each check; this module knows their order and what each one
needs from the ones before: a document is checked on its own text first, then
fingerprinted and compared with the documents already seen (the collection's indexed
ones and those kept earlier in the run); its chunks are checked once it is chunked; and
once every document is loaded, the run's paragraphs are compared for boilerplate. The
pipeline and benchmarks/quality_checks.py both go through here, so they cannot drift.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from ingest.chunking import ChunkDraft
from ingest.document import LoadedDocument
from ingest.quality import (
    Finding,
    SeenDocuments,
    check_boilerplate,
    check_chunks,
    check_document,
    check_duplicate,
    check_near_duplicate,
    drop_repeated_chunks,
    paragraph_fingerprints,
    signature,
    text_hash,
)


@dataclass(frozen=True)
class Verdict:
    """What the checks found in one loaded document, and its fingerprints."""

    findings: list[Finding]  # in the order of the checks
    text_hash: str
    signature: list[int]

    @property
    def rejection(self) -> Finding | None:
        """The first error, which keeps the document out of the index; None: it goes in."""
        return next((i for i in self.findings if i.severity == "error"), None)

    @property
    def fingerprints(self) -> tuple[str, list[int]]:
        """(text hash, signature): what later runs compare new documents with."""
        return self.text_hash, self.signature


class QualityGate:
    """Checks each document a run loads, then the run as a whole.

    `seen` starts with the collection's indexed documents; the gate adds each document
    it lets in and forgets one found to be an exact duplicate (its earlier version is
    withdrawn). `seconds`, if given, collects the time spent per kind of check.
    """

    def __init__(self, seen: SeenDocuments, seconds: dict[str, float] | None = None) -> None:
        self.seen = seen
        self.seconds = seconds
        # Paragraph fingerprints and sources of the documents let in, by path: for boilerplate.
        self._paragraphs: dict[str, list[tuple[int, int]]] = {}
        self._sources: dict[str, str] = {}

    def check(self, path: str, source: str, doc: LoadedDocument) -> Verdict:
        """Run the checks of one document, and remember it if it goes in."""
        with self._timed("own text"):
            findings = check_document(doc)
        with self._timed("fingerprints"):
            digest, sig = text_hash(doc.text), signature(doc.text)
        with self._timed("duplicates"):
            duplicate = check_duplicate(path, digest, self.seen)
            # An exact copy is rejected anyway: comparing its phrases would say nothing more.
            near = None if duplicate else check_near_duplicate(path, sig, self.seen)
        verdict = Verdict([i for i in (*findings, duplicate, near) if i], digest, sig)
        rejection = verdict.rejection
        if rejection is None:
            with self._timed("duplicates"):
                self.seen.add(path, source, digest, sig)
            with self._timed("boilerplate"):
                self._paragraphs[path] = paragraph_fingerprints(doc)
            self._sources[path] = source
        elif rejection is duplicate:
            with self._timed("duplicates"):
                self.seen.remove(path)
        return verdict

    def check_chunks(self, drafts: list[ChunkDraft]) -> tuple[list[ChunkDraft], list[Finding]]:
        """Run the checks of a document's chunks (after it is let in and chunked): the
        chunks to index (each repeated text once) and the findings."""
        kept, repeated = drop_repeated_chunks(drafts)
        return kept, [*check_chunks(kept), *([repeated] if repeated else [])]

    def finish(self) -> list[Finding]:
        """Run the checks across the run, once every document is loaded."""
        with self._timed("boilerplate"):
            found = check_boilerplate(self._paragraphs)
        return [replace(finding, source=self._sources[path]) for path, finding in found.items()]

    @contextmanager
    def _timed(self, kind: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            if self.seconds is not None:
                elapsed = time.perf_counter() - started
                self.seconds[kind] = self.seconds.get(kind, 0.0) + elapsed
