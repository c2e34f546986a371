"""Whether the passages found for a question answer it at all.

The scope decision (app/rag/scope.py) asks whether the collection is *about* the
question; a near miss in the manual's own field passes it: "How do I track video files
with Git LFS?" finds git pages, "How do I define a Django model?" finds Python pages,
because the collection mentions LFS once and Django five times. What gives them away:
the passages found do not name what the question asks about.

What is kept (`rag.answerable_names`, `rare_missing_names`): a question is not answered
from passages that hold none of its names (app/rag/scope.py's rule: "LFS", "GitHub",
"NumPy", "3.13") when the name is rare in the collection (in fewer than RARE of its
chunks). A name the collection uses all the time ("Windows", "Linux", "ID") is the
question's setting, not its subject, and need not be in the passages. It costs a few
look-ups in the word index.

What was measured and not kept (benchmarks/answerable.py; docs/answer-quality.md): the
share of the question's key words (content words less the words every question uses,
compared by their first five letters) found in one passage, and the best cosine
between the question and one passage sentence (the embedding model already loaded).
Near misses and right answers reach the same values, so neither separates them without
refusing more in-scope questions than it saves; `answerability` computes both for the
benchmark.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from app.llm.embedder import Embed
from app.rag.grounding import content_words
from app.rag.scope import names
from app.store.lexical import tokens
from app.store.vectors import Hit

_SENTENCE = re.compile(r"(?<=[.!?:])\s+|\n+")
# Words any question may use that say nothing of what it is about.
_ASKING_WORDS = (
    "want need make get set way ways possible able happen happens happened thing things "
    "something anything everything someone people user users like just still really "
    "actually tell know mean means going instead already again without first new good "
    "best better right wrong work works working kind sort okay ok please thanks help "
    "one two whole every other another many much lot lots back keep kept give take "
    "well via does doesn't don't isn't can't won't it's i'm i've we're they're "
)
_ASKING = frozenset(_ASKING_WORDS.split())
# A sentence shorter than this is a heading or a code fragment: not judged alone.
_SHORTEST = 12
# A name held by fewer than this share of a collection's chunks is rare in it (chosen
# on the dev half of the question sets: above the near misses' "3.13", 0.33% of the
# Python pages' chunks, below an in-scope "Slack", 0.39% of docchat's docs';
# docs/answer-quality.md).
RARE = 0.0035
# How the two measures are blended: semantic weight (lexical gets the rest).
SEMANTIC = 0.5


def asked_words(question: str) -> set[str]:
    """What a question asks about: its content words less the asking ones."""
    words = {w for w in content_words(question) if w not in _ASKING and not w.isdigit()}
    return {w for w in words if len(w) > 1}


def key_words(question: str) -> set[str]:
    """The asked words, each cut to its first five letters."""
    return {_stem(w) for w in asked_words(question)}


def _stem(word: str) -> str:
    return word.strip("-_/.:'\"")[:5]


def passage_sentences(text: str) -> list[str]:
    """A passage's sentences (list items and lines apart), the very short ones left out."""
    return [s.strip() for s in _SENTENCE.split(text) if len(s.strip()) >= _SHORTEST]


@dataclass(frozen=True)
class Answerability:
    """How well the passages answer a question."""

    lexical: float  # share of the question's key words in the best passage
    semantic: float  # best cosine, question to a passage sentence
    sentence: str  # that sentence
    source: str  # and its passage's source

    @property
    def score(self) -> float:
        """The blend the threshold is compared with."""
        return SEMANTIC * self.semantic + (1 - SEMANTIC) * self.lexical


def _present(name: str, held: set[str]) -> bool:
    """Whether a name's index terms are among `held`: the whole, or one of its parts of
    three letters or more ("OOM-killed" by "killed"; never "3" for "3.13")."""
    found = tokens(name)
    if not found:
        return True  # a stop word: nothing to look for
    if found[0] in held:
        return True
    return any(t.isalpha() and len(t) >= 3 and t in held for t in found[1:])


def missing_names(question: str, hits: Sequence[Hit]) -> list[str]:
    """The names the question asks about (capitalized inside a sentence, acronyms,
    versions: "Git LFS", "Django", "Python 3.13", app/rag/scope.py's rule) that no
    passage holds. The collection mentioning them somewhere is not enough: a question
    about GitHub finds git pages that never say GitHub."""
    held = set(tokens(" ".join(h.text for h in hits)))
    return [n for n in dict.fromkeys(names(question)) if not _present(n, held)]


def rare_missing_names(
    question: str, hits: Sequence[Hit], share: Callable[[str], float]
) -> list[str]:
    """The missing names (`missing_names`) that are rare in the collection: held by
    fewer than RARE of its chunks (`share` gives a term's share), the whole or any
    part of three letters or more. A name the collection uses all the time ("Windows",
    "Linux", "ID", "3.11" in the Python manual) is context, not what the question asks
    about, and the passages need not repeat it; a rare one ("LFS", "GitHub" in the git
    manual, "NumPy", "Django", "3.13" in Python's) is the subject of a question the
    collection only brushes against."""
    rare = []
    for name in missing_names(question, hits):
        found = tokens(name)
        parts = found[:1] + [t for t in found[1:] if t.isalpha() and len(t) >= 3]
        if parts and max(share(t) for t in parts) < RARE:
            rare.append(name)
    return rare


def lexical_cover(question: str, hits: Sequence[Hit]) -> float:
    """The largest share of the question's key words found in one passage."""
    asked = key_words(question)
    if not asked:
        return 1.0  # nothing to look for: the lexical measure cannot refuse
    best = 0.0
    for hit in hits:
        held = {_stem(w) for w in content_words(hit.text)}
        best = max(best, len(asked & held) / len(asked))
    return best


def answerability(question: str, hits: Sequence[Hit], embed: Embed) -> Answerability:
    """Both measures for a question and the passages found for it."""
    lexical = lexical_cover(question, hits)
    pairs = [(s, h) for h in hits for s in passage_sentences(h.text)]
    if not pairs:
        return Answerability(lexical, 0.0, "", "")
    vectors = np.asarray(embed([question] + [s for s, _ in pairs]), dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
    cosines = vectors[1:] @ vectors[0]
    best = int(np.argmax(cosines))
    sentence, hit = pairs[best]
    source = str(hit.metadata.get("source", "")) if hit.metadata else ""
    return Answerability(lexical, float(cosines[best]), sentence, source)


def answers_question(question: str, hits: Sequence[Hit], embed: Embed, threshold: float) -> bool:
    """Whether the passages answer the question (none found: they do not)."""
    if not hits:
        return False
    return answerability(question, hits, embed).score >= threshold
