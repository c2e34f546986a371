"""Context assembly: the retrieved chunks turned into a few passages within a budget.

Hits are taken best first. A hit next to (or inside) a passage already chosen from the
same document joins it; a hit whose words nearly repeat a chosen passage is dropped;
any other hit opens a new passage while there is room (at most `max_passages`). Then
the passages are widened, best first and one chunk at a time (the next chunk, then the
previous), with neighbouring chunks of the same section while the budget allows, so a
hit that only names a topic brings the paragraphs that follow it.

A passage keeps its page (source, title) and section; a passage that runs into another
section shows that section's heading where it starts. Chunks repeat a few sentences of
the chunk before them (the chunker's overlap): joined, the repeat is written once. The
budget counts the tokens of the excerpt texts with the embedding model's tokenizer.
Each passage is one `Hit`: the id, score and vector of its best chunk, and in its
metadata `ord` the first chunk (where its citation opens the document) and `ords` all of
them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from app.store.chunk_texts import StoredChunk, chunks_around
from app.store.db import Database
from app.store.vectors import Hit

TokenCounter = Callable[[list[str]], list[int]]
# Chunks read on each side of a passage when widening it.
WIDEN_READ = 8
# The shortest repeat of one chunk at the start of the next taken for the overlap (a
# chance repeat of a word or two is not one).
OVERLAP_MIN_CHARS = 12
# Word-set resemblance (Jaccard) above which a hit repeats a chosen passage.
NEAR_DUPLICATE = 0.8

_WORDS = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return set(_WORDS.findall(text.lower()))


def resemblance(a: set[str], b: set[str]) -> float:
    """Jaccard similarity of two word sets."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def join_overlapping(first: str, second: str) -> str:
    """Two consecutive chunks as one text, what `second` repeats from the end of `first`
    written once. The repeat is whole sentences or paragraphs (the chunker's overlap
    units, joined as written: a paragraph's sentences by a space or a line break), so it
    is looked for between whitespace boundaries, at least OVERLAP_MIN_CHARS long."""
    cuts = [m.start() for m in re.finditer(r"\s+", second)] + [len(second)]
    for k in reversed(cuts):
        if k < OVERLAP_MIN_CHARS:
            break
        repeat = second[:k]
        if first.endswith(repeat) and (len(first) == k or first[-k - 1].isspace()):
            rest = second[k:]
            return first + rest if rest.strip() else first
    return f"{first}\n\n{second}"


@dataclass
class _Passage:
    best: Hit
    document_id: str
    pieces: dict[int, tuple[str, str]] = field(default_factory=dict)  # ord -> (section, text)
    neighbours: dict[int, StoredChunk] | None = None

    @property
    def first(self) -> int:
        return min(self.pieces)

    @property
    def last(self) -> int:
        return max(self.pieces)

    def text(self) -> str:
        out = ""
        section = self.pieces[self.first][0]
        previous = -2
        for ord_ in sorted(self.pieces):
            chunk_section, chunk_text = self.pieces[ord_]
            if not out:
                out = chunk_text
            elif chunk_section != section and chunk_section:
                out = f"{out}\n\n{chunk_section}\n\n{chunk_text}"
            elif ord_ == previous + 1:
                out = join_overlapping(out, chunk_text)
            else:
                out = f"{out}\n\n…\n\n{chunk_text}"
            section, previous = chunk_section, ord_
        return out

    def as_hit(self) -> Hit:
        first = self.first
        metadata = dict(self.best.metadata)
        metadata.update(ord=first, section=self.pieces[first][0], ords=sorted(self.pieces))
        return replace(self.best, text=self.text(), metadata=metadata)


class ContextAssembler:
    """Builds the prompt's passages from ranked hits, within a token budget."""

    def __init__(
        self, db: Database | None, count_tokens: TokenCounter, *, budget: int, max_passages: int
    ) -> None:
        self.db = db  # None: no widening (nothing to read neighbours from)
        self.count = count_tokens
        self.budget = budget
        self.max_passages = max_passages

    def assemble(self, hits: list[Hit]) -> list[Hit]:
        """The passages for these hits (best first), their texts within the budget;
        the best hit always makes one, cut to nothing else however long it is."""
        passages: list[_Passage] = []
        sizes: list[int] = []
        seen: list[set[str]] = []
        for hit in hits:
            doc = str(hit.metadata.get("document_id", ""))
            ord_ = int(hit.metadata.get("ord", 0))
            words = _words(hit.text)
            if any(resemblance(words, other) >= NEAR_DUPLICATE for other in seen):
                continue
            section = str(hit.metadata.get("section", ""))
            home = next(
                (
                    i
                    for i, p in enumerate(passages)
                    if p.document_id == doc and doc and p.first - 1 <= ord_ <= p.last + 1
                ),
                None,
            )
            if home is not None:
                if ord_ not in passages[home].pieces and self._try_add(
                    passages, sizes, home, ord_, (section, hit.text)
                ):
                    seen.append(words)
                continue
            if len(passages) >= self.max_passages:
                continue
            passage = _Passage(hit, doc, {ord_: (section, hit.text)})
            size = self.count([passage.text()])[0]
            if passages and sum(sizes) + size > self.budget:
                continue
            passages.append(passage)
            sizes.append(size)
            seen.append(words)
        if self.db is not None:
            self._widen(passages, sizes)
        return [p.as_hit() for p in passages]

    def _try_add(
        self,
        passages: list[_Passage],
        sizes: list[int],
        i: int,
        ord_: int,
        piece: tuple[str, str],
    ) -> bool:
        passage = passages[i]
        passage.pieces[ord_] = piece
        size = self.count([passage.text()])[0]
        if sum(sizes) - sizes[i] + size > self.budget:
            del passage.pieces[ord_]
            return False
        sizes[i] = size
        return True

    def _widen(self, passages: list[_Passage], sizes: list[int]) -> None:
        """Neighbouring chunks of the same section, best passage first, one per
        passage per round, until nothing more fits."""
        assert self.db is not None
        for passage in passages:
            if not passage.document_id:
                passage.neighbours = {}
                continue
            rows = chunks_around(
                self.db,
                passage.document_id,
                passage.first - WIDEN_READ,
                passage.last + WIDEN_READ,
            )
            by_ord = {r.ord: r for r in rows}
            stored = by_ord.get(int(passage.best.metadata.get("ord", -1)))
            # Another version of the document than the hit came from: no neighbours.
            passage.neighbours = by_ord if stored and stored.id == passage.best.id else {}
        grew = True
        while grew:
            grew = False
            for i, passage in enumerate(passages):
                assert passage.neighbours is not None
                section = str(passage.best.metadata.get("section", ""))
                for ord_ in (passage.last + 1, passage.first - 1):
                    row = passage.neighbours.get(ord_)
                    if row is None or row.section != section or ord_ in passage.pieces:
                        continue
                    if self._try_add(passages, sizes, i, ord_, (row.section, row.text)):
                        grew = True
                        break
