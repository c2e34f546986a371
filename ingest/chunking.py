"""Cut a loaded document into chunks that follow its sections and paragraphs.

Sizes are counted in tokens of the embedding model, because that model ignores
whatever passes its window: a chunk larger than the window is partly invisible.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from ingest.document import LoadedDocument

TokenCounter = Callable[[list[str]], list[int]]

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_LINE_BREAK = re.compile(r"\n")
# A section smaller than this (a heading over one short line) is merged into the next:
# alone it is too short to be found. Larger small sections stay apart, because a
# focused chunk retrieves better than one diluted by an unrelated neighbour.
MIN_SECTION_TOKENS = 24


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk before it is stored."""

    ord: int
    section: str
    text: str
    n_tokens: int

    @property
    def content_hash(self) -> str:
        """sha256 of the text: the same text is the same chunk."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def embedding_text(title: str, section: str, text: str) -> str:
    """What is embedded: the chunk with its title and section, which carry the topic."""
    header = " — ".join(part for part in (title, section) if part)
    return f"{header}\n{text}" if header else text


@dataclass
class _Unit:
    text: str
    tokens: int
    # What joins it to the unit before it in a chunk: a paragraph break, or, for a
    # piece of a paragraph split to fit, the whitespace it was split at (a sentence
    # split must not read as a new paragraph to the prompt or to the passage shown).
    joint: str = "\n\n"


class Chunker:
    """Packs paragraphs into chunks of at most `max_tokens`, with a small overlap."""

    def __init__(self, count_tokens: TokenCounter, *, max_tokens: int, overlap: int) -> None:
        if overlap >= max_tokens // 2:
            raise ValueError("chunk overlap must be less than half the chunk size")
        self.count = count_tokens
        self.max_tokens = max_tokens
        self.overlap = overlap

    def chunk(self, doc: LoadedDocument) -> list[ChunkDraft]:
        """The chunks of a document, in reading order."""
        drafts: list[ChunkDraft] = []
        pending: tuple[str, list[_Unit]] | None = None
        for section in doc.sections:
            paragraphs = [p.strip() for p in section.paragraphs if p.strip()]
            if not paragraphs:
                continue
            header_tokens = self.count([embedding_text(doc.title, section.heading, "")])[0]
            budget = max(self.max_tokens - header_tokens, self.max_tokens // 2)
            units = self._units(paragraphs, budget)
            heading = section.heading
            if pending is not None:
                # A tiny section is merged into the next one rather than left as a
                # chunk too short to be found; the next heading stays in the text.
                first_heading, small = pending
                pending = None
                merged = [*small, *self._units([heading], budget)] if heading else small
                if sum(u.tokens for u in merged) + units[0].tokens <= budget:
                    units, heading = merged + units, first_heading
                else:
                    drafts.extend(self._pack(first_heading, small, budget, len(drafts)))
            packed = self._pack(heading, units, budget, len(drafts))
            if len(packed) == 1 and packed[0].n_tokens < MIN_SECTION_TOKENS:
                pending = (heading, units)
                continue
            drafts.extend(packed)
        if pending is not None:
            heading, small = pending
            drafts.extend(self._pack(heading, small, self.max_tokens, len(drafts)))
        return drafts

    def _units(self, paragraphs: list[str], budget: int) -> list[_Unit]:
        """Paragraphs, with any paragraph over the budget split into sentences, then words."""
        units: list[_Unit] = []
        for paragraph, tokens in zip(paragraphs, self.count(paragraphs), strict=True):
            if tokens <= budget:
                units.append(_Unit(paragraph, tokens))
                continue
            pieces = _split(paragraph, _SENTENCE_END)
            if "\n" in paragraph and len(pieces) <= 1:
                pieces = _split(paragraph, _LINE_BREAK)
            texts = [text for text, _ in pieces]
            for (piece, joint), piece_tokens in zip(pieces, self.count(texts), strict=True):
                if piece_tokens <= budget:
                    split = [_Unit(piece, piece_tokens)]
                else:
                    split = self._split_words(piece, piece_tokens, budget)
                if joint:  # not the paragraph's first piece
                    split[0].joint = joint
                units.extend(split)
        return units

    def _split_words(self, text: str, tokens: int, budget: int) -> list[_Unit]:
        """Windows of words that each fit the budget (a last resort for run-on text)."""
        words = text.split()
        per_window = max(1, int(len(words) * budget / tokens * 0.9))
        windows = [" ".join(words[i : i + per_window]) for i in range(0, len(words), per_window)]
        units = []
        for window, window_tokens in zip(windows, self.count(windows), strict=True):
            if window_tokens > budget and len(window.split()) > 1:
                half = window.split()
                units.extend(self._split_words(" ".join(half), window_tokens, budget))
            else:
                units.append(_Unit(window, window_tokens))
        for unit in units[1:]:
            unit.joint = " "
        return units

    def _pack(self, heading: str, units: list[_Unit], budget: int, start: int) -> list[ChunkDraft]:
        """Greedy packing; each new chunk repeats the tail of the previous one."""
        chunks: list[ChunkDraft] = []
        current: list[_Unit] = []
        fresh = 0  # units in `current` not already emitted in an earlier chunk

        def emit() -> None:
            text = current[0].text + "".join(u.joint + u.text for u in current[1:])
            tokens = sum(u.tokens for u in current)
            chunks.append(ChunkDraft(start + len(chunks), heading, text, tokens))

        for unit in units:
            size = sum(u.tokens for u in current)
            if current and size + unit.tokens > budget:
                emit()
                current = self._overlap_tail(current, budget - unit.tokens)
                fresh = 0
            current.append(unit)
            fresh += 1
        if current and fresh:
            emit()
        return chunks

    def _overlap_tail(self, units: list[_Unit], room: int) -> list[_Unit]:
        """The last units of a chunk that fit in the overlap (and beside the next unit)."""
        limit = min(self.overlap, room)
        tail: list[_Unit] = []
        total = 0
        for unit in reversed(units):
            if total + unit.tokens > limit:
                break
            tail.insert(0, unit)
            total += unit.tokens
        return tail


def _split(paragraph: str, at: re.Pattern[str]) -> list[tuple[str, str]]:
    """The pieces of `paragraph` between matches of `at` (blank ones dropped), each with
    what stood between it and the piece before ("" for the first): joined back, they are
    the paragraph."""
    pieces: list[tuple[str, str]] = []
    gap = start = 0  # gap: where the text between the last piece and the next begins
    for match in at.finditer(paragraph):
        if paragraph[start : match.start()].strip():
            pieces.append((paragraph[start : match.start()], paragraph[gap:start]))
            gap = match.start()
        start = match.end()
    if paragraph[start:].strip():
        pieces.append((paragraph[start:], paragraph[gap:start]))
    return pieces
