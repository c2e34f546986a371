"""Whether the exact things an answer names are in its passages, each with what the
answer says about it.

A small model's wrong answers are often faithful in wording and false in the one thing
that matters: an invented flag (`--chunks` where the page names `llm.prefill_chunk`),
a setting or number taken from the next line (`rag.top_k` for `rag.min_score`, 20 for
50 MB), or a real command credited with what another one does (`make install` "also
ingests the docs and starts the server", which is `make run`). Embedding similarity
and word overlap cannot see these; an exact look-up can.

The terms of an answer are its commands, flags, dotted names (settings, functions),
environment variables, paths, calls and numbers, and every word of a code span. Each
must occur in a passage paragraph (a paragraph that ends with a colon counts together
with the list after it) that also holds at least half of what the answer's sentence
says besides (its content words the question does not already hold). A term that the
question itself names is the user's word, not a claim.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.rag.grounding import content_words

_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_FLAG = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")
_DOTTED = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?![\w(])")
_ENV = re.compile(r"(?<!\w)[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9](?!\w)")
_PATH = re.compile(r"(?<![\w/])(?:~|\.{1,2})?/?[\w.-]+(?:/[\w.{}-]+)+/?")
_CALL = re.compile(r"(?<![\w.])[A-Za-z_][\w.]*\(\)")
_NUMBER = re.compile(r"(?<![\w.,/:-])(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?![\w.,]\w|\d)")
# A command where a code span or a code line starts, or after "run".
_COMMAND = re.compile(
    r"(?:^|`|\$ |sudo |\brun )((?:docchat|make|git|pip)[ \t]+[a-z][\w-]*)", re.MULTILINE
)
_PATTERNS = (_FLAG, _DOTTED, _ENV, _PATH, _CALL, _NUMBER)
_LIST_MARK = re.compile(r"^\s*\d+[.)](?:\s|$)", re.MULTILINE)
_CITATION = re.compile(r"\[\d+\]")  # the prompt asks the model to cite excerpts as [1]
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_PARAGRAPH = re.compile(r"\n\s*\n|\n(?=\s*(?:[-*|]|\d+[.)])\s)")
_LIST_ITEM = re.compile(r"(?:[-*]|\d+[.)])\s")
_ABBREVIATIONS = frozenset({"e.g", "i.e", "etc", "vs"})
# What the answer's sentence says about a term must be this share of it in one paragraph,
# when it says at least SAID words besides (fewer: too few to compare, presence decides).
PAIRED = 0.5
SAID = 3


def _norm(text: str) -> str:
    """Lower case, one space, plain quotes and dashes: how terms are compared."""
    for fancy, plain in (("\u2018", "'"), ("\u2019", "'"), ("\u201c", '"'), ("\u201d", '"')):
        text = text.replace(fancy, plain)
    text = text.replace("\u2013", "-").replace("\u2014", "-")
    return re.sub(r"\s+", " ", text).lower()


def terms(text: str) -> set[str]:
    """The exact things a text names, as written: what must be found in the docs."""
    text = _CITATION.sub(" ", _LIST_MARK.sub(" ", text))
    found: set[str] = set()
    for span in _CODE_SPAN.findall(text):
        for word in span.split():
            word = word.strip(".,:;'\"()[]{}")
            # NAME, PATH, <key>: placeholders, not claims
            if len(word) > 1 and not word.isupper() and "<" not in word:
                found.add(word)
    for pattern in _PATTERNS:
        for match in pattern.findall(text):
            word = match.strip(".,:;'\"")
            if word and word.lower() not in _ABBREVIATIONS:
                found.add(word)
    found.update(_COMMAND.findall(text))
    return found


def paragraphs(passages: Sequence[str]) -> list[str]:
    """The passages' paragraphs, their wrapped lines joined; a paragraph that ends with
    a colon keeps the list that follows it (the list says what it introduces)."""
    units: list[str] = []
    for text in passages:
        introduces = False
        for paragraph in _PARAGRAPH.split(text):
            joined = " ".join(paragraph.split())
            if not joined:
                continue
            if introduces and units and _LIST_ITEM.match(joined):
                units[-1] += " " + joined
                continue
            units.append(joined)
            introduces = joined.endswith(":")
    return units


def _stems(text: str) -> set[str]:
    """Content words by their first five letters ("ingests" meets "ingesting")."""
    return {w[:5] for w in content_words(text)}


def unpaired_terms(
    question: str, answer: str, passages: Sequence[str], paired: float = PAIRED
) -> list[str]:
    """The answer's terms that no passage paragraph holds together with at least
    `paired` of what the answer's sentence says besides (0: only terms missing from
    the passages altogether), in the order the answer names them."""
    asked, asked_stems = _norm(question), _stems(question)
    units = [_norm(u) for u in paragraphs(passages)]
    unit_stems = [_stems(u) for u in units]
    missing: list[str] = []
    for sentence in _SENTENCE.split(_LIST_MARK.sub(" ", answer)):
        for term in sorted(terms(sentence)):
            t = _norm(term)
            if t in asked or term in missing:
                continue
            # A manual names the command `git blame` as git-blame as often as not.
            spellings = {t, t.replace(" ", "-")}
            holding = [n for n, unit in enumerate(units) if any(w in unit for w in spellings)]
            said = _stems(_CODE_SPAN.sub(" ", sentence)) - asked_stems - _stems(term)
            if not holding or (
                len(said) >= SAID
                and max(len(said & unit_stems[n]) for n in holding) < paired * len(said)
            ):
                missing.append(term)
    return missing
