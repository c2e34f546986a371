"""Whether the documentation covers a question at all, decided per collection.

A question is refused, without asking the model, when its best chunk's cosine is below
the collection's scope threshold, or when it names something the collection never
mentions (a product, a tool, an acronym: "Okta", "Sourcetree", "SAML"). The threshold
is calibrated per collection, since what an unrelated question scores depends on the
collection (on a small focused manual an unrelated question's best chunk scores about
0.2, on a large one up to 0.45 with the same embedding model):

- from a question set (`docchat calibrate --questions FILE`): the threshold leaves at
  most `max_false_refusals` of its in-scope questions below it;
- without one (what `docchat ingest` does after every run): the score that no question
  of a fixed list of unrelated ones (HR, office and IT matters, other products, everyday
  life; off_topic.txt beside this file) exceeds on this collection.

The calibration is stored in the collection's metadata beside its index record, so it
travels with the vectors; `rag.scope=min_score` ignores it (the fixed rag.min_score for
every collection, as before), and a collection never calibrated uses rag.min_score.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.rag.prompt import NO_CONTEXT_ANSWER

OFF_TOPIC_FILE = Path(__file__).with_name("off_topic.txt")
PREFIX = "docchat:scope_"

# A word as a name is written: letters and digits, joined by . - _ + #.
_WORD = re.compile(r"[A-Za-z0-9][\w.\-+#]*[\w+#]|[A-Za-z0-9]")
_SENTENCE_END = re.compile(r"(?<=[.?!:;])\s+")
# What a user writes about themselves or points at: e-mail addresses, web addresses and
# telephone numbers are never names a collection should mention ("I am jane.doe@…").
_CONTACT = re.compile(r"\S+@\S+|\b(?:https?|ftp)://\S+|\+?\d[\d ()./-]{6,}\d")
# How a model says in its own words that the documentation does not cover a question.
NOT_COVERED = re.compile(
    r"\b(?:does not|doesn't|do not|don't|did not|didn't)\s+(?:clearly\s+)?"
    r"(?:cover|mention|contain|include|say|provide|describe|specify|address)"
    r"|\bnot\s+(?:covered|mentioned|specified|described|documented)"
    r"|\bno\s+(?:information|mention|details?)\s+(?:about|on|of|regarding)"
    r"|\bI\s+(?:do not|don't|cannot|can't)\s+(?:know|find|answer)",
    re.IGNORECASE,
)


def not_covered_answer(unknown: Sequence[str], kinds: Sequence[str] = ()) -> str:
    """What the user reads when the docs do not cover a question: naming what they never
    mention, when a name is why, or else the kind of fact asked for that no passage
    gives ("a price": app/rag/answer_types.py)."""
    if unknown:
        return (
            f"The documentation does not cover this question: it never mentions "
            f"{_either(unknown)}, so I will not guess."
        )
    if kinds:
        return (
            f"The documentation does not cover this question: I found no passage that "
            f"gives {_either(kinds)}, so I will not guess."
        )
    return NO_CONTEXT_ANSWER


def _either(items: Sequence[str]) -> str:
    named = list(dict.fromkeys(items))
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " or " + named[-1]


def off_topic_questions(path: Path = OFF_TOPIC_FILE) -> list[str]:
    """The shipped list of questions no documentation answers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def says_not_covered(text: str) -> bool:
    """Whether an answer says the documentation does not cover the question."""
    return NOT_COVERED.search(text) is not None


def names(question: str) -> list[str]:
    """The words of a question written as names are: capitalized inside a sentence
    ("Okta", "Sourcetree"), in capitals ("SAML"), or with inner capitals, digits, dots
    or underscores ("useEffect", "for_each", "json.dumps")."""
    found = []
    for sentence in _SENTENCE_END.split(_CONTACT.sub(" ", question)):
        for i, word in enumerate(_WORD.findall(sentence)):
            if word == "I" or word.isdigit():
                continue
            if (
                (i > 0 and word[0].isupper())
                or (len(word) > 1 and word.isupper())
                or re.search(r"[a-z][A-Z]|[A-Za-z]\d|[._]\w", word)
            ):
                found.append(word)
    return found


def unknown_names(
    question: str, terms_of: Callable[[str], Sequence[str]], knows: Callable[[str], bool]
) -> list[str]:
    """The names in a question that the collection never mentions: `terms_of` gives a
    word's index terms (a compound whole and its parts; none for a stop word), `knows`
    whether the collection holds a term. A name counts as mentioned when any of its
    terms is ("OOM-killed" by "killed"), so that only what is foreign to the collection
    as a whole counts."""
    unknown = []
    for word in names(question):
        terms = terms_of(word)
        if terms and not any(knows(t) for t in terms):
            unknown.append(word)
    return unknown


@dataclass(frozen=True)
class Calibration:
    """A collection's scope threshold and how it was found."""

    threshold: float
    method: str  # "questions" (a question set) or "off-topic" (the shipped list)
    basis: str  # the question file, or the number of off-topic questions
    in_scope: int = 0
    out_of_scope: int = 0  # the set's own out-of-scope questions (off-topic list aside)
    # On the questions it was computed from (not a held-out figure).
    false_refusals: float | None = None
    refused_out_of_scope: float | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds")[:19])

    def to_metadata(self) -> dict[str, Any]:
        """Chroma collection metadata (flat str/int/float values; None left out)."""
        meta: dict[str, Any] = {
            f"{PREFIX}threshold": round(self.threshold, 4),
            f"{PREFIX}method": self.method,
            f"{PREFIX}basis": self.basis,
            f"{PREFIX}in_scope": self.in_scope,
            f"{PREFIX}out_of_scope": self.out_of_scope,
            f"{PREFIX}at": self.at,
        }
        if self.false_refusals is not None:
            meta[f"{PREFIX}false_refusals"] = round(self.false_refusals, 4)
        if self.refused_out_of_scope is not None:
            meta[f"{PREFIX}refused_out_of_scope"] = round(self.refused_out_of_scope, 4)
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, Any] | None) -> Calibration | None:
        """The calibration in a collection's metadata (None: never calibrated)."""
        meta = meta or {}
        if f"{PREFIX}threshold" not in meta:
            return None

        def optional(key: str) -> float | None:
            value = meta.get(PREFIX + key)
            return None if value is None else float(value)

        return cls(
            threshold=float(meta[f"{PREFIX}threshold"]),
            method=str(meta.get(f"{PREFIX}method", "")),
            basis=str(meta.get(f"{PREFIX}basis", "")),
            in_scope=int(meta.get(f"{PREFIX}in_scope", 0)),
            out_of_scope=int(meta.get(f"{PREFIX}out_of_scope", 0)),
            false_refusals=optional("false_refusals"),
            refused_out_of_scope=optional("refused_out_of_scope"),
            at=str(meta.get(f"{PREFIX}at", "")),
        )

    def describe(self) -> str:
        """One line: the threshold and where it came from."""
        if self.method == "questions":
            how = f"from {self.basis} ({self.in_scope} in scope, {self.out_of_scope} out of scope)"
        else:
            how = f"from {self.basis}"
        return f"scope threshold {self.threshold:.3f} ({self.method}, {how}, {self.at} UTC)"


def threshold_from_questions(inside: Sequence[float], max_false_refusals: float) -> float:
    """The threshold that leaves at most `max_false_refusals` of the in-scope questions'
    best scores below it: halfway between the last one it refuses and the first one it
    keeps (below the lowest, by a hair, when it may refuse none)."""
    if not inside:
        raise ValueError("no in-scope questions to calibrate on")
    ordered = sorted(inside)
    k = math.floor(max_false_refusals * len(ordered) + 1e-9)  # questions it may refuse
    if k == 0:
        return ordered[0] - 0.005
    if k >= len(ordered):
        return ordered[-1]
    return (ordered[k - 1] + ordered[k]) / 2


def threshold_from_off_topic(scores: Sequence[float]) -> float:
    """The threshold over unrelated questions' best scores: the highest of them, so that
    none of them would be answered."""
    if not scores:
        raise ValueError("no off-topic questions to calibrate on")
    return max(scores) + 0.005


def refused_share(scores: Sequence[float], threshold: float) -> float:
    """The share of scores below the threshold."""
    return sum(s < threshold for s in scores) / len(scores) if scores else 0.0


def calibrate(
    best_score: Callable[[str], float],
    *,
    questions: Sequence[tuple[str, bool]] = (),
    basis: str = "",
    max_false_refusals: float = 0.05,
    off_topic: Sequence[str] | None = None,
) -> Calibration:
    """A collection's calibration: from `questions` ((question, out_of_scope) pairs, a
    question set's) when it holds in-scope ones, else from the off-topic list.
    `best_score` is the collection's best chunk cosine for a question, as retrieval
    finds it."""
    inside = [best_score(q) for q, outside in questions if not outside]
    outside = [best_score(q) for q, outside in questions if outside]
    if inside:
        threshold = threshold_from_questions(inside, max_false_refusals)
        return Calibration(
            threshold=threshold,
            method="questions",
            basis=basis,
            in_scope=len(inside),
            out_of_scope=len(outside),
            false_refusals=refused_share(inside, threshold),
            refused_out_of_scope=refused_share(outside, threshold) if outside else None,
        )
    listed = list(off_topic) if off_topic is not None else off_topic_questions()
    scores = [best_score(q) for q in listed]
    threshold = threshold_from_off_topic(scores)
    return Calibration(
        threshold=threshold,
        method="off-topic",
        basis=f"{len(listed)} off-topic questions",
        out_of_scope=0,
        refused_out_of_scope=refused_share(scores, threshold),
    )
