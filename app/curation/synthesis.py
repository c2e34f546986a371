"""Questions the chat model writes for passages of a collection, each with a short
answer, and the checks that keep the junk out.

The model sees one passage and writes QUESTION / ANSWER pairs. What it wrote is kept
raw in a cache file per model and collection (keyed by the passage's text), so a
second run, an interrupted one or one with other filters, distractors or shares asks
the model again only for passages it has not seen. The checks run on every read: a
question must be one (ends with "?", a sensible length, does not speak of "the
passage", not asked twice) and the answer must be grounded in its passage by the chat
service's own check (grounding score and named terms), and must not decline.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.curation.passages import Passage
from app.llm.base import ChatEngine, greedy_text
from app.llm.embedder import Embedder
from app.rag.grounding import grounding_score
from app.rag.scope import says_not_covered
from app.rag.terms import unpaired_terms
from app.store.vectors import Hit
from common.control_tokens import strip_control_tokens

# Bump when the instructions change: cached generations of other instructions are not
# reused.
PROMPT_VERSION = 3
INSTRUCTIONS = (
    "You write questions and answers for a product's documentation FAQ. Read the "
    "documentation passage, then write {n} question(s) that a user of the product might "
    "ask and that the passage answers, each with a short answer (one or two sentences) "
    "that uses only what the passage says. Ask about the product itself, the way a user "
    'would, without speaking of "the passage", "the text" or "the documentation". Write '
    "exactly:\n"
    "Question: ...\nAnswer: ..."
)
_PAIR = re.compile(
    r"Question:\s*(?P<q>.+?)\s*\n\s*Answer:\s*(?P<a>.+?)\s*(?=\n\s*Question:|\Z)",
    re.DOTALL | re.IGNORECASE,
)
_SPEAKS_OF_THE_SOURCE = re.compile(
    r"\b(?:the|this|that|above|given)\s+(?:passage|excerpt|text|section|document)\b"
    r"|\bin the documentation\b",
    re.IGNORECASE,
)
# A citation like [2]; the model's own are taken out of its answers (the number an
# example cites is the oracle's place among its excerpts, set later).
CITATION_NUMBER = re.compile(r"\[(\d+)\]")
_CITATION = re.compile(r"\s*\[\d+\]")
QUESTION_CHARS = (12, 300)
ANSWER_CHARS = (8, 600)


@dataclass(frozen=True)
class Pair:
    """A question the model wrote for a passage and its answer, kept or refused."""

    question: str
    answer: str
    rejected: str = ""  # why it was refused; empty when kept


def passage_key(passage: Passage, n: int) -> str:
    """What a cached generation is known by: the passage's text and how many pairs."""
    data = f"{PROMPT_VERSION}\n{n}\n{passage.get('source')}\n{passage['text']}"
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


# One worked example before the real passage: small models follow the format from it
# (SmolLM2-135M wrote prose about "the passage" from the instructions alone).
EXAMPLE_PASSAGE = (
    "To export a report, open it and choose Export > CSV. Reports of more than 10,000 "
    "rows are exported in the background and sent to you by email when ready."
)
EXAMPLE_PAIR = (
    "Question: How do I get a report as a CSV file?\n"
    "Answer: Open the report and choose Export > CSV; one of more than 10,000 rows is "
    "emailed to you when ready."
)


def _user_turn(text: str) -> str:
    text = strip_control_tokens(text).replace("</passage>", "</ passage>")
    return f"Documentation passage:\n<passage>\n{text}\n</passage>"


def generation_messages(passage: Passage, n: int) -> list[dict[str, str]]:
    """What the model is asked for one passage."""
    return [
        {"role": "system", "content": INSTRUCTIONS.format(n=n)},
        {"role": "user", "content": _user_turn(EXAMPLE_PASSAGE)},
        {"role": "assistant", "content": EXAMPLE_PAIR},
        {"role": "user", "content": _user_turn(str(passage["text"]))},
    ]


def parse(text: str) -> list[tuple[str, str]]:
    """The (question, answer) pairs of a generation, in order."""
    found = []
    for match in _PAIR.finditer(text):
        question = " ".join(match["q"].split())
        answer = " ".join(_CITATION.sub("", match["a"]).split())
        found.append((question, answer))
    return found


def hit_of(passage: Passage) -> Hit:
    """A passage as the grounding check takes it."""
    return Hit(
        id=str(passage.get("chunk", "")),
        text=str(passage["text"]),
        score=1.0,
        metadata={"source": passage.get("source") or "", "section": passage.get("section") or ""},
    )


@dataclass(frozen=True)
class Checks:
    """The bar an answer must clear: the chat service's grounding settings."""

    grounding_threshold: float = 0.5
    check_terms: bool = True


def judge(
    pairs: list[tuple[str, str]],
    passage: Passage,
    embedder: Embedder,
    checks: Checks,
    seen: set[str],
) -> list[Pair]:
    """Each pair kept or refused, with the reason; `seen` holds the questions kept so
    far (lower-cased) and gains the new ones."""
    judged = []
    for question, answer in pairs:
        reason = question_problem(question, seen) or answer_problem(
            question, answer, passage, embedder, checks
        )
        if not reason:
            seen.add(question.lower())
        judged.append(Pair(question, answer, reason))
    return judged


def question_problem(question: str, seen: set[str]) -> str:
    """Why a question is not kept (empty when it is)."""
    low, high = QUESTION_CHARS
    if not question.endswith("?"):
        return "not a question"
    if not low <= len(question) <= high:
        return "question too short or too long"
    if _SPEAKS_OF_THE_SOURCE.search(question):
        return "question speaks of the passage"
    if question.lower() in seen:
        return "question asked twice"
    return ""


def answer_problem(
    question: str, answer: str, passage: Passage, embedder: Embedder, checks: Checks
) -> str:
    """Why an answer is not kept (empty when it is): it must be grounded in the passage
    as the chat service judges answers, and must answer."""
    low, high = ANSWER_CHARS
    if not low <= len(answer) <= high:
        return "answer too short or too long"
    if says_not_covered(answer):
        return "answer declines"
    hit = hit_of(passage)
    score, _detail = grounding_score(answer, [hit], embedder.embed)
    if score < checks.grounding_threshold:
        return "answer not grounded in the passage"
    if checks.check_terms and unpaired_terms(question, answer, [hit.text]):
        return "answer names terms the passage lacks"
    return ""


class Cache:
    """Raw generations, one JSON line each ({key, text}), appended as they come: what a
    run already asked is never asked again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.known: dict[str, str] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.known[str(row["key"])] = str(row["text"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut short by a kill: asked again

    def add(self, key: str, text: str) -> None:
        """Keep one generation (on disk at once)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"key": key, "text": text}, ensure_ascii=False) + "\n")
        self.known[key] = text


def cache_path(data_dir: Path, model_sha256: str | None, collection: str) -> Path:
    """Where one model's generations for one collection are kept."""
    model = (model_sha256 or "unknown")[:16]
    return data_dir / "datasets" / ".synthesis" / f"{collection}-{model}.jsonl"


def generate(
    engine: ChatEngine,
    passages: list[Passage],
    n: int,
    cache: Cache,
    *,
    max_tokens_per_pair: int = 120,
    progress: Callable[[int, int], None] = lambda done, asked: None,
) -> Iterator[tuple[Passage, list[tuple[str, str]]]]:
    """Each passage with the pairs the model wrote for it (greedy, so a rerun writes
    the same); cached ones are not asked again. `progress` gets (passages done, of
    which asked now)."""
    asked = 0
    for done, passage in enumerate(passages, start=1):
        key = passage_key(passage, n)
        if key not in cache.known:
            messages = generation_messages(passage, n)
            text = asyncio.run(greedy_text(engine, messages, max_tokens_per_pair * n))
            cache.add(key, text)
            asked += 1
        progress(done, asked)
        yield passage, parse(cache.known[key])[:n]


def summary(judged: list[Pair]) -> dict[str, Any]:
    """How many were kept and why the others were not."""
    reasons: dict[str, int] = {}
    for pair in judged:
        if pair.rejected:
            reasons[pair.rejected] = reasons.get(pair.rejected, 0) + 1
    return {"written": len(judged), "kept": sum(not p.rejected for p in judged), **reasons}
