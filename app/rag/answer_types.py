"""Whether the passages hold the kind of thing a question asks for.

Some near misses ask for a fact of a kind a manual rarely holds: a price ("How much
does the enterprise plan cost per seat?"), a phone line ("the support hotline's
number"), a contact's e-mail address, the date of a release ("When is 2.0 coming
out?"). The passages found for them are about the product, so the scope threshold and
the names rules let them through, and a small model then invents the fact. A passage
that answers such a question holds a fact of that kind: an amount of money, a phone
number, an address, a calendar date. When none of the passages does, the docs do not
answer it, whatever else the passages say.

This is question classification by expected answer type, as question-answering
systems have long done, kept to the few types that can be recognised reliably in both
the question and the text. A question that merely uses a word of the kind ("How much
does a dict cost in memory?", "When does git gc run?") is not asked to find one: each
type names what the question must ask and what turns the reading aside.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_I = re.IGNORECASE
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_YEAR = r"(?:19|20)\d\d"


@dataclass(frozen=True)
class AnswerType:
    """A kind of fact: when a question asks for one and how a passage gives one."""

    name: str  # as the refusal could say it: "a price"
    asks: re.Pattern[str]  # the question asks for such a fact
    evidence: re.Pattern[str]  # a passage holds one
    unless: re.Pattern[str] | None = None  # the question means something else


TYPES = (
    AnswerType(
        "a price",
        re.compile(r"\b(?:costs?|price[sd]?|pricing|fees?|per seat)\b", _I),
        re.compile(
            r"[$€£¥]\s?\d|\b\d[\d,.]*\s?(?:usd|eur|gbp|dollars?|euros?)\b"
            r"|\bfree of charge\b|\bat no cost\b|\bpricing\b",
            _I,
        ),
        # "What does it cost in memory / time": a measure, not money.
        re.compile(
            r"\b(?:memory|ram|disk|space|storage|time|seconds?|cpu|tokens?|latency|speed|"
            r"performance|bytes?|accuracy|quality)\b",
            _I,
        ),
    ),
    AnswerType(
        "a phone number",
        re.compile(
            r"\b(?:phone|telephone|hotline)\b|\b(?:call|ring)\b.*\bnumber\b"
            r"|\bnumber\b.*\b(?:call|ring)\b|\bwho (?:do|should|can) (?:i|we) call\b",
            _I,
        ),
        # A number, not the word: a settings table may list "phone" as a kind of data.
        re.compile(
            r"(?:\+\d{1,3}[ .-]?)?\(?\b\d{2,4}\)?[ .-]\d{3,4}[ .-]\d{3,5}\b|\btel:",
            _I,
        ),
    ),
    AnswerType(
        "an e-mail address",
        re.compile(
            r"\be-?mail address(?:es)? (?:of|for)\b"
            r"|\b(?:sales|support|contact)\b.*\be-?mail\b|\be-?mail\b.*\b(?:sales|support)\b",
            _I,
        ),
        re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    ),
    AnswerType(
        "a date",
        re.compile(
            r"\bwhen\b[^?!\n]*\b(?:release[sd]?|come out|coming out|ships?|shipping|"
            r"launch(?:es|ed)?|end of life|stop getting|supported until)\b"
            r"|\brelease date\b|\broadmap\b",
            _I,
        ),
        re.compile(
            rf"\b{_YEAR}-\d\d-\d\d\b|\b{_MONTH} \d{{1,2}},? {_YEAR}\b"
            rf"|\b\d{{1,2}} {_MONTH} {_YEAR}\b|\b{_MONTH} {_YEAR}\b|\bq[1-4] {_YEAR}\b"
            rf"|\b(?:in|by|since|until) {_YEAR}\b",
            _I,
        ),
    ),
)


def asked_types(question: str) -> list[AnswerType]:
    """The kinds of fact the question asks for (most ask for none)."""
    return [
        t for t in TYPES if t.asks.search(question) and not (t.unless and t.unless.search(question))
    ]


# A page's own stamp ("Last updated 2024-05-31 00:35:55 UTC" under every git-doc page)
# dates the file, not anything the page is about.
_STAMP = re.compile(r"\b(?:last (?:updated|modified|changed)|generated (?:on|at))\b[^\n]*", _I)


def missing_answer_types(question: str, passages: Sequence[str]) -> list[str]:
    """The kinds of fact the question asks for that no passage holds."""
    asked = asked_types(question)
    if not asked:
        return []  # most questions: the passages need not be read
    texts = [_STAMP.sub(" ", text) for text in passages]
    return [t.name for t in asked if not any(t.evidence.search(text) for text in texts)]
