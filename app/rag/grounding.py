"""How much of an answer its sources support: sentence by sentence, by meaning
(embedding similarity to the retrieved chunks) and by words (lexical overlap)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import Stemmer

from app.llm.embedder import Embed
from app.store.vectors import Hit

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[A-Za-z0-9_./:-]+")
# Words that say nothing about support; a sentence made only of them is not judged.
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "you",
        "your",
        "we",
        "our",
        "they",
        "their",
        "he",
        "she",
        "can",
        "could",
        "will",
        "would",
        "should",
        "may",
        "might",
        "do",
        "does",
        "did",
        "not",
        "no",
        "yes",
        "so",
        "such",
        "there",
        "here",
        "what",
        "which",
        "who",
        "how",
        "when",
        "where",
        "why",
        "also",
        "more",
        "most",
        "some",
        "any",
        "each",
        "all",
        "than",
        "into",
        "about",
        "over",
        "under",
        "use",
        "used",
        "using",
        "i",
        "me",
        "my",
    ]
)
# A sentence counts as supported at this blend of similarity and word overlap.
SUPPORTED = 0.55


def sentences(text: str) -> list[str]:
    """The answer's sentences (and list items), without the empty ones."""
    return [s.strip() for s in _SENTENCE.split(text) if s and len(s.strip()) > 1]


def content_words(text: str) -> set[str]:
    """Lower-cased words that carry meaning."""
    return {w.strip(".:").lower() for w in _WORD.findall(text)} - _STOP - {""}


def asks_back(sentence: str, question_words: set[str]) -> bool:
    """Whether an answer sentence only asks the user's question back: a question made of
    the question's own words. The passages found for the question resemble it, so such a
    sentence would score as supported although it says nothing (the default model once
    answered "When is docchat 2.0 coming out...?" with the question itself, grounded at
    1.0). A statement in the question's words ("docchat can run on a GPU.") is scored
    here as an answer; whether it says anything beyond its yes or no is
    `restates_question`'s to judge (rag.check_restated)."""
    return sentence.rstrip().endswith("?") and content_words(sentence) <= question_words


# Words a yes-or-no answer adds to the question without saying anything the passages
# could be checked for ("No, you cannot ..."; content_words splits "doesn't" at the ').
_POLARITY = frozenset({"cannot", "can", "doesn", "isn", "don", "won", "aren", "wasn", "t"})


def restates_question(question: str, answer: str) -> bool:
    """Whether every sentence of the answer only restates the question: no word beyond
    the question's own but yes, no and their kin. "Yes, docchat does have a browser
    extension that answers questions on any web page." says only its polarity, which
    neither the sentence similarity nor the terms can check: the passages found
    resemble the question, so it scores as supported. An answer that adds anything
    ("120", "No. The conversation survives a reload") is left to the other checks; so is
    a bare "No." (nothing to judge)."""
    asked = _stems(question)
    prefixes, stems = {prefix for prefix, _ in asked}, {stem for _, stem in asked}
    said = [words for words in (_stems(s) for s in sentences(_CITATIONS.sub(" ", answer))) if words]
    return bool(said) and all(
        all(prefix in prefixes or stem in stems for prefix, stem in words) for words in said
    )


# A name in code's spelling: camelCase, snake_case, dotted, or with digits.
_TERM = re.compile(r"[a-z][A-Z]|\w[_.]\w|\d")
# Excerpt numbers the prompt asks the model to cite ("[1]", "[2, 3]"): no word of the answer.
_CITATIONS = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
# Words that stand for a thing without naming it ("-m does not do anything").
_INDEFINITE = frozenset({"anything", "nothing", "something", "everything"})
_STEMMER = Stemmer.Stemmer("english")


def _stems(text: str) -> set[tuple[str, str]]:
    """Content words as (first five letters, English stem), both the name in code's
    spelling whole: "ValueError" is not the "value" a question asked about. Either form
    matches: the prefix meets "resolved" with "resolving", the stem "keeps" with "keep"."""
    out = set()
    for raw in _WORD.findall(text):
        word = raw.strip(".:")
        lower = word.lower()
        if not lower or lower in _STOP or lower in _POLARITY or lower in _INDEFINITE:
            continue
        if _TERM.search(word):
            out.add((lower, lower))
        else:
            out.add((lower[:5], _STEMMER.stemWord(lower)))
    return out


def grounding_score(
    answer: str, hits: Sequence[Hit], embed: Embed, question: str | None = None
) -> tuple[float, list[dict[str, object]]]:
    """Share of the answer (by words) in supported sentences, and the per-sentence detail.
    With the `question`, a sentence that only asks it back counts as unsupported."""
    parts = [s for s in sentences(answer) if content_words(s)]
    if not parts or not hits:
        return 0.0, []
    question_words = content_words(question) if question is not None else None
    source_words = set().union(*(content_words(h.text) for h in hits))
    chunk_vectors = np.array([h.embedding for h in hits if h.embedding is not None])
    if len(chunk_vectors) != len(hits):
        chunk_vectors = np.array(embed([h.text for h in hits]))
    sentence_vectors = np.array(embed(parts))
    similarity = (sentence_vectors @ chunk_vectors.T).max(axis=1)
    detail: list[dict[str, object]] = []
    supported_weight = total_weight = 0.0
    for text, semantic in zip(parts, similarity, strict=True):
        words = content_words(text)
        lexical = len(words & source_words) / len(words)
        support = 0.5 * float(semantic) + 0.5 * lexical
        if question_words is not None and asks_back(text, question_words):
            support = 0.0
        weight = float(len(words))
        total_weight += weight
        if support >= SUPPORTED:
            supported_weight += weight
        detail.append({"sentence": text[:200], "support": round(support, 3)})
    return supported_weight / total_weight, detail
