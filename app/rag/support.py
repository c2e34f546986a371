"""The passage sentence that supports each sentence of an answer.

A reader who doubts a sentence wants the line of the docs it rests on, not a page. For
every answer sentence the passage sentence most like it is found (the embedding
model's cosine, blended with the share of the answer sentence's content words that
sentence holds, as the grounding score blends them); a sentence whose best match stays
below `SUPPORTED` is marked unsupported, and its closest sentence is still given, for
the reader to judge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.llm.embedder import Embed
from app.rag.answerable import passage_sentences
from app.rag.grounding import SUPPORTED, content_words, sentences
from app.store.vectors import Hit

# Longest answer or passage sentence returned (a long code line is cut, not dropped).
LONGEST = 400


@dataclass(frozen=True)
class Support:
    """One answer sentence and the passage sentence that supports it best."""

    sentence: str
    source: str  # the passage's source, "" when none was found
    passage_sentence: str
    score: float
    supported: bool

    def as_dict(self) -> dict[str, Any]:
        """As the API returns it (in checks.support)."""
        return {
            "sentence": self.sentence[:LONGEST],
            "source": self.source,
            "passage_sentence": self.passage_sentence[:LONGEST],
            "score": round(self.score, 3),
            "supported": self.supported,
        }


def sentence_support(answer: str, hits: Sequence[Hit], embed: Embed) -> list[Support]:
    """Each answer sentence with content words, with its best passage sentence."""
    parts = [s for s in sentences(answer) if content_words(s)]
    pairs = [(s, h) for h in hits for s in passage_sentences(h.text)]
    if not parts:
        return []
    if not pairs:
        return [Support(p, "", "", 0.0, False) for p in parts]
    vectors = np.asarray(embed(parts + [s for s, _ in pairs]), dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
    cosines = vectors[: len(parts)] @ vectors[len(parts) :].T
    held = [content_words(s) for s, _ in pairs]
    out = []
    for i, part in enumerate(parts):
        words = content_words(part)
        lexical = np.array([len(words & h) / len(words) for h in held])
        blended = 0.5 * cosines[i] + 0.5 * lexical
        best = int(np.argmax(blended))
        sentence, hit = pairs[best]
        source = str(hit.metadata.get("source", "")) if hit.metadata else ""
        score = float(blended[best])
        out.append(Support(part, source, sentence, score, score >= SUPPORTED))
    return out


async def support_field(
    answer: str, hits: Sequence[Hit], embed: Embed
) -> list[dict[str, Any]] | None:
    """`sentence_support` off the event loop, as checks.support holds it (None: no
    sentence to support)."""
    found = await asyncio.to_thread(sentence_support, answer, hits, embed)
    return [s.as_dict() for s in found] or None
