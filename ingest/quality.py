"""Data-quality checks on what goes into the index: junk is reported, not indexed."""

from __future__ import annotations

import unicodedata

from ingest.chunking import ChunkDraft
from ingest.document import LoadedDocument, LoadError
from ingest.injection import injection_findings

# More replacement or control characters than this share of the text means the
# bytes were decoded wrongly or the file is not really text.
GARBLED_RATIO = 0.02
NEAR_EMPTY_CHARS = 200
SHORT_CHUNK_TOKENS = 12


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


def check_document(doc: LoadedDocument) -> list[str]:
    """Raise LoadError on a hard failure; return soft warnings."""
    text = doc.text
    ratio = garbled_ratio(text)
    if ratio > GARBLED_RATIO:
        raise LoadError(f"garbled text ({ratio:.0%} replacement or control characters)")
    warnings = list(doc.warnings)
    if len(text.strip()) < NEAR_EMPTY_CHARS:
        warnings.append(f"near-empty: only {len(text.strip())} characters of text")
    # Headings are scanned too: the section heading is shown with each excerpt in the prompt.
    headings = [doc.title, *(s.heading for s in doc.sections)]
    warnings += injection_findings("\n\n".join([*headings, text]))
    return warnings


def check_chunks(drafts: list[ChunkDraft]) -> list[str]:
    """Warnings about chunks too short to be useful on their own."""
    short = [d for d in drafts if d.n_tokens < SHORT_CHUNK_TOKENS]
    if short and len(drafts) > 1:
        return [
            f"{len(short)} of {len(drafts)} chunks are shorter than {SHORT_CHUNK_TOKENS} tokens"
        ]
    return []
