"""One answer's embeddings, each text embedded once.

The checks after an answer embed its sentences several times over (the system-prompt
paraphrase check, the grounding score, the sentence support), and a looping answer
repeats sentences; with one memo per answer, each distinct text costs one embedding.
"""

from __future__ import annotations

from app.llm.embedder import Embed


class EmbeddingMemo:
    """An `Embed` that remembers what it embedded (for one answer: it never forgets)."""

    def __init__(self, embed: Embed) -> None:
        self._embed = embed
        self._known: dict[str, list[float]] = {}

    def __call__(self, texts: list[str]) -> list[list[float]]:
        new = [t for t in dict.fromkeys(texts) if t not in self._known]
        if new:
            self._known.update(zip(new, self._embed(new), strict=True))
        return [self._known[t] for t in texts]
