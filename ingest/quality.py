"""Data-quality checks on what goes into the index: junk is reported, duplicates kept out.

Each check is one function returning `Finding`s. Checks of one document look at its text
alone (garbled, near-empty, injection, short chunks); the others compare it with the
rest of the collection (duplicate, near-duplicate) or with the other documents loaded
in the run (boilerplate). An "error" keeps the document out of the index; a "warning"
is only reported. The pipeline decides what an error does to a previous version.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from ingest.chunking import ChunkDraft
from ingest.document import LoadedDocument
from ingest.injection import injection_findings

# More replacement or control characters than this share of the text means the
# bytes were decoded wrongly or the file is not really text.
GARBLED_RATIO = 0.02
# Less text than this is worth a warning (an empty file already fails to load).
NEAR_EMPTY_CHARS = 200
SHORT_CHUNK_TOKENS = 12
# A short chunk is what the end of a section leaves: one in a document is normal (the
# PostgreSQL manual gave 127 such warnings, all "1 of N"). Text cut into fragments (a
# table flattened cell by cell, a page of one-word headings) leaves many: warn when at
# least this many, and this share, of a document's chunks are short.
SHORT_CHUNK_MIN = 2
SHORT_CHUNK_SHARE = 0.25
# A chunk repeated word for word is always indexed once; the finding is for a page
# copied over and over (a PDF of one page six times, one line 5,000 times). A long
# reference page repeating a code sample or two is normal: clean manuals gave 11 such
# warnings (1-4 of 17-303 chunks; the Python 3.11 and PostgreSQL 15 manuals, at most
# 8%). Warn when at least this many, and this share, of a document's chunks repeat.
REPEATED_CHUNK_MIN = 2
REPEATED_CHUNK_SHARE = 0.25

# Near-duplicates: documents sharing this share of their 5-word phrases (Jaccard
# similarity of the sets of word 5-shingles). It is estimated from a bottom-k MinHash
# signature of SIGNATURE_SIZE values (the smallest shingle hashes), stored per document
# so that later runs compare without reloading files; with 64 values the estimate is
# within about ±0.04 of the true similarity near 0.9 (exact for pages under 64 shingles).
SHINGLE_WORDS = 5
SIGNATURE_SIZE = 64
NEAR_DUPLICATE_SIMILARITY = 0.9

# Boilerplate: a paragraph is "repeated" when it appears in at least BOILERPLATE_MIN_DOCS
# documents and in at least BOILERPLATE_DOC_SHARE of the documents loaded in the run; a
# document whose text is at least BOILERPLATE_TEXT_SHARE repeated paragraphs (by
# characters) is mostly boilerplate. Fewer than BOILERPLATE_MIN_DOCS loaded documents:
# no judgement. On the Python manual only "See also" passes the first test.
BOILERPLATE_MIN_DOCS = 5
BOILERPLATE_DOC_SHARE = 0.3
BOILERPLATE_TEXT_SHARE = 0.7

# Every check name, in the order reports list them.
CHECKS = (
    "load",
    "limits",
    "garbled",
    "duplicate",
    "near_duplicate",
    "boilerplate",
    "near_empty",
    "short_chunks",
    "repeated_chunks",
    "injection",
    # A source's own: pages robots.txt refused, a crawl stopped at its limits.
    "source",
)

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Finding:
    """What a check found about one document: an error keeps it out of the index, a
    warning is reported."""

    check: str  # one of CHECKS
    severity: str  # error | warning
    reason: str
    # The document's source, once the pipeline names it (a check of a text knows none).
    source: str = ""


# --- checks of one document ---------------------------------------------------------------


def garbled_ratio(text: str) -> float:
    """Share of characters that are U+FFFD or control characters other than whitespace."""
    if not text:
        return 0.0
    bad = sum(
        1
        for ch in text
        if ch == "\ufffd" or (unicodedata.category(ch) == "Cc" and ch not in "\n\r\t")
    )
    return bad / len(text)


def check_garbled(text: str) -> Finding | None:
    """Error: text that was decoded wrongly or is not really text."""
    ratio = garbled_ratio(text)
    if ratio > GARBLED_RATIO:
        return Finding(
            "garbled", "error", f"garbled text ({ratio:.0%} replacement or control characters)"
        )
    return None


def check_near_empty(text: str) -> Finding | None:
    """Warning: too little text to answer anything from."""
    size = len(text.strip())
    if size < NEAR_EMPTY_CHARS:
        return Finding("near_empty", "warning", f"near-empty: only {size} characters of text")
    return None


def check_injection(doc: LoadedDocument) -> list[Finding]:
    """Warnings: text that tries to instruct the model."""
    # Headings are scanned too: the section heading is shown with each excerpt in the prompt.
    headings = [doc.title, *(s.heading for s in doc.sections)]
    found = injection_findings("\n\n".join([*headings, doc.text]))
    return [Finding("injection", "warning", reason) for reason in found]


def check_document(doc: LoadedDocument) -> list[Finding]:
    """The checks of one document's own text: the loader's warnings, then each check."""
    findings = [Finding("load", "warning", warning) for warning in doc.warnings]
    findings += [Finding("limits", "warning", note) for note in doc.limits]
    findings += [i for i in (check_garbled(doc.text), check_near_empty(doc.text)) if i]
    return findings + check_injection(doc)


def check_chunks(drafts: list[ChunkDraft]) -> list[Finding]:
    """Warning: chunks too short to be useful on their own."""
    short = [d for d in drafts if d.n_tokens < SHORT_CHUNK_TOKENS]
    if len(short) >= SHORT_CHUNK_MIN and len(short) >= SHORT_CHUNK_SHARE * len(drafts):
        reason = (
            f"{len(short)} of {len(drafts)} chunks are shorter than {SHORT_CHUNK_TOKENS} tokens"
        )
        return [Finding("short_chunks", "warning", reason)]
    return []


def drop_repeated_chunks(drafts: list[ChunkDraft]) -> tuple[list[ChunkDraft], Finding | None]:
    """One copy of each chunk text, renumbered in reading order; a warning with the count
    when repeats are many (REPEATED_CHUNK_MIN, REPEATED_CHUNK_SHARE).

    A page repeated a thousand times would otherwise be embedded and stored a thousand
    times, and fill every search result with copies of itself.
    """
    seen: set[str] = set()
    kept: list[ChunkDraft] = []
    for draft in drafts:
        if draft.text not in seen:
            seen.add(draft.text)
            kept.append(draft if draft.ord == len(kept) else replace(draft, ord=len(kept)))
    dropped = len(drafts) - len(kept)
    if not dropped:
        return drafts, None
    if dropped < REPEATED_CHUNK_MIN or dropped < REPEATED_CHUNK_SHARE * len(drafts):
        return kept, None
    reason = (
        f"{dropped} of {len(drafts)} chunks repeat an earlier chunk word for word; "
        f"dropped, each text is indexed once ({len(kept)} chunks)"
    )
    return kept, Finding("repeated_chunks", "warning", reason)


# --- fingerprints ----------------------------------------------------------------------------


def text_hash(text: str) -> str:
    """sha256 of the cleaned text: equal for files that differ only in what loading drops."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def signature(text: str) -> list[int]:
    """Bottom-k MinHash of the text's word 5-shingles: its SIGNATURE_SIZE smallest hashes.

    Words are lower-cased runs of letters and digits, so markup and spacing do not count.
    The hash is stable across processes (the signature is stored). Empty under 5 words.
    """
    words = _WORD.findall(text.casefold())
    shingles = {
        " ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)
    }
    hashes = {
        # 63 bits: the values stay within a signed 64-bit integer wherever they are stored.
        int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest()) >> 1
        for s in shingles
    }
    return sorted(heapq.nsmallest(SIGNATURE_SIZE, hashes))


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity of two documents' shingle sets, from their signatures.

    The smallest hashes of the union are a random sample of it; the share of that sample
    found in both signatures estimates the share of shingles the documents have in common.
    """
    set_a, set_b = set(a), set(b)
    union = sorted(set_a | set_b)[:SIGNATURE_SIZE]
    if not union:
        return 0.0
    return sum(1 for h in union if h in set_a and h in set_b) / len(union)


def paragraph_fingerprints(doc: LoadedDocument) -> list[tuple[int, int]]:
    """(hash, length) of each paragraph, spacing and case ignored: for the boilerplate check.

    The hash is Python's own: it is only compared within one run.
    """
    normalized = (" ".join(p.split()).casefold() for s in doc.sections for p in s.paragraphs)
    return [(hash(p), len(p)) for p in normalized if p]


# --- checks against other documents ----------------------------------------------------------


class SeenDocuments:
    """The documents a new one is compared with, keyed by path.

    Filled with the collection's indexed documents (their stored hash and signature),
    then with each document the run keeps. The signatures are indexed by value: two
    documents that are near-duplicates share most of their smallest hashes, so only
    documents sharing at least half of them are compared, not every pair.
    """

    def __init__(self) -> None:
        self._sources: dict[str, str] = {}
        self._hashes: dict[str, str] = {}
        self._first_with_hash: dict[str, str] = {}
        self._signatures: dict[str, list[int]] = {}
        self._by_value: defaultdict[int, set[str]] = defaultdict(set)

    def add(self, path: str, source: str, text_hash: str, signature: Sequence[int]) -> None:
        """Add or replace a document."""
        self.remove(path)
        self._sources[path] = source
        self._hashes[path] = text_hash
        self._first_with_hash.setdefault(text_hash, path)
        self._signatures[path] = list(signature)
        for value in signature:
            self._by_value[value].add(path)

    def remove(self, path: str) -> None:
        """Forget a document (no longer indexed, or about to be replaced)."""
        if path not in self._sources:
            return
        del self._sources[path]
        digest = self._hashes.pop(path)
        if self._first_with_hash.get(digest) == path:
            del self._first_with_hash[digest]
        for value in self._signatures.pop(path):
            self._by_value[value].discard(path)

    def duplicate_of(self, path: str, text_hash: str) -> str | None:
        """Source of another document with exactly this text."""
        other = self._first_with_hash.get(text_hash)
        return self._sources[other] if other is not None and other != path else None

    def most_similar(self, path: str, signature: Sequence[int]) -> tuple[str, float] | None:
        """Source and similarity of the most similar other document, if any is a candidate."""
        shared = Counter(p for value in signature for p in self._by_value.get(value, ()))
        best: tuple[str, float] | None = None
        for other, count in shared.items():
            if other == path or count < len(signature) / 2:
                continue
            score = similarity(signature, self._signatures[other])
            if best is None or score > best[1]:
                best = (self._sources[other], score)
        return best


def check_duplicate(path: str, digest: str, seen: SeenDocuments) -> Finding | None:
    """Error: the same text as another document, which stays (it came first)."""
    original = seen.duplicate_of(path, digest)
    if original is None:
        return None
    return Finding("duplicate", "error", f"exact duplicate of {original}")


def check_near_duplicate(path: str, sig: Sequence[int], seen: SeenDocuments) -> Finding | None:
    """Warning: most 5-word phrases shared with another document."""
    found = seen.most_similar(path, sig) if sig else None
    if found is None or found[1] < NEAR_DUPLICATE_SIMILARITY:
        return None
    other, score = found
    return Finding(
        "near_duplicate",
        "warning",
        f"near-duplicate of {other} ({score:.0%} of 5-word phrases shared)",
    )


def check_boilerplate(
    paragraphs: Mapping[str, Iterable[tuple[int, int]]],
) -> dict[str, Finding]:
    """Warnings for documents that are mostly paragraphs repeated across the run.

    `paragraphs` maps each document loaded in the run to its paragraph fingerprints.
    """
    documents = {key: list(prints) for key, prints in paragraphs.items()}
    if len(documents) < BOILERPLATE_MIN_DOCS:
        return {}
    in_documents = Counter(h for prints in documents.values() for h in {h for h, _ in prints})
    needed = max(BOILERPLATE_MIN_DOCS, math.ceil(BOILERPLATE_DOC_SHARE * len(documents)))
    repeated = {h for h, count in in_documents.items() if count >= needed}
    findings = {}
    for key, prints in documents.items():
        total = sum(length for _, length in prints)
        share = sum(length for h, length in prints if h in repeated) / total if total else 0.0
        if share >= BOILERPLATE_TEXT_SHARE:
            reason = f"mostly boilerplate ({share:.0%} repeated text)"
            findings[key] = Finding("boilerplate", "warning", reason)
    return findings
