"""Retrieval-augmented fine-tuning (RAFT) examples from a collection's own passages.

Each example is asked as the chat service asks: docchat's system prompt, numbered
excerpts, the question. The excerpts hold the passage the question was written for
(the "oracle") at a random place among `distractors` other passages, chosen among the
collection's passages that share the most words with it (as retrieval would bring
them, not random ones an adapter could tell apart by topic); the target is the
model's grounded answer citing the oracle's number. A share of the examples leaves the
oracle out (distractors from other documents only, as many excerpts as otherwise) and
the target says that the documentation does not cover it, so that an adapter learns to
decline too, not only to answer.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.curation import passages as passages_
from app.curation.datasets import assign_splits, split_score
from app.curation.export import messages_for
from app.curation.passages import Passage
from app.curation.synthesis import Pair
from app.store.models import Chunk, Document

# What the target says when the excerpts lack the answer: the chat service's own
# refusal check (app/rag/scope.py NOT_COVERED) recognises it.
NOT_COVERED_ANSWER = "The documentation does not cover this: none of the excerpts answers it."
# Passages with fewer words make questions about headings and link lists.
MIN_WORDS = 40
# Distractors are drawn from this many times `distractors` nearest passages.
POOL = 3


@dataclass(frozen=True)
class Recipe:
    """How the examples are put together (recorded in the command's report)."""

    questions_per_passage: int = 1
    distractors: int = 3
    no_oracle_share: float = 0.2
    held_out: float = 0.2
    seed: int = 0
    passages: int | None = None  # how many passages to sample (None: all)
    max_tokens: int = 1024  # an example, prompt and answer, fits this

    def check(self) -> None:
        """ValueError for settings that make no examples."""
        if self.questions_per_passage < 1:
            raise ValueError("questions_per_passage: at least 1")
        if self.distractors < 0:
            raise ValueError("distractors: 0 or more")
        if not 0 <= self.no_oracle_share < 1:
            raise ValueError("no_oracle_share: a share from 0 up to (not including) 1")
        if self.passages is not None and self.passages < 1:
            raise ValueError("passages: at least 1")


def collection_passages(session: Session, collection: str) -> list[Passage]:
    """Every chunk of the collection's ingested documents long enough to ask about, in
    a fixed order (source, then chunk)."""
    rows = session.execute(
        select(Document, Chunk)
        .join(Chunk, Chunk.document_id == Document.id)
        .where(Document.collection == collection, Document.status == "indexed")
        .order_by(Document.source, Chunk.ord)
    ).all()
    found = [passages_.passage(d, c) for d, c in rows]
    return [p for p in found if len(str(p["text"]).split()) >= MIN_WORDS]


def sample(passages: list[Passage], count: int | None, seed: int) -> list[Passage]:
    """`count` passages chosen by the seed (all of them, shuffled, when None)."""
    chosen = list(passages)
    random.Random(seed).shuffle(chosen)
    return chosen if count is None else chosen[:count]


def _same_place(a: Passage, b: Passage, *, whole_document: bool) -> bool:
    if a["document_id"] != b["document_id"]:
        return False
    return whole_document or a.get("section") == b.get("section")


def distractors_for(
    oracle: Passage,
    passages: list[Passage],
    k: int,
    rng: random.Random,
    *,
    other_documents: bool,
) -> list[Passage]:
    """`k` passages close to the oracle by shared words, drawn from its POOL*k nearest;
    never its own section (it may say the same), nor its document at all when
    `other_documents` (the examples without the oracle must not hold its answer)."""
    if k == 0:
        return []
    target = passages_.words(str(oracle["text"]))
    candidates = [
        p
        for p in passages
        if not _same_place(p, oracle, whole_document=other_documents)
        and p["text"] != oracle["text"]
    ]
    nearest = sorted(
        candidates,
        key=lambda p: (-passages_.overlap(passages_.words(str(p["text"])), target), p["chunk"]),
    )[: POOL * k]
    return rng.sample(nearest, min(k, len(nearest)))


def cite(answer: str, number: int) -> str:
    """The answer with the oracle's number before its final stop, as the system prompt
    asks the model to cite."""
    answer = answer.rstrip()
    mark = f" [{number}]"
    if answer and answer[-1] in ".!":
        return answer[:-1] + mark + answer[-1]
    return answer + mark + "."


def example_id(passage: Passage, question: str) -> str:
    """An example's id: its passage and question (the same every run)."""
    data = f"{passage['document_id']}:{passage['chunk']}:{question}"
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:32]


def record(
    passage: Passage,
    question: str,
    answer: str,
    passages: list[Passage],
    recipe: Recipe,
    collection: str,
    count_tokens: Callable[[list[dict[str, str]]], int],
) -> dict[str, Any] | None:
    """One example as a dataset row (split left to `records`), or None when even the
    oracle alone does not fit recipe.max_tokens. Whether the oracle is left out is
    decided by the seed and the example id, independent of the other examples."""
    rid = example_id(passage, question)
    rng = random.Random(f"{recipe.seed}:{rid}")
    without = split_score(recipe.seed + 1, rid) < recipe.no_oracle_share
    if without:
        excerpts = distractors_for(
            passage, passages, recipe.distractors + 1, rng, other_documents=True
        )
        target = NOT_COVERED_ANSWER
    else:
        excerpts = distractors_for(
            passage, passages, recipe.distractors, rng, other_documents=False
        )
        excerpts.insert(rng.randrange(len(excerpts) + 1), passage)
    while excerpts:
        if not without:
            number = next(i for i, p in enumerate(excerpts, 1) if p is passage)
            target = cite(answer, number)
        row = {
            "id": rid,
            "collection": collection,
            "question": question,
            "turns": [],
            "passages": [_stored(p) for p in excerpts],
            "answer": target,
            "split": "train",
        }
        if count_tokens(messages_for(row)) <= recipe.max_tokens:
            return row
        # Too long: the farthest distractor goes first; the oracle stays.
        drop = next((p for p in reversed(excerpts) if p is not passage), None)
        if drop is None:
            return None
        excerpts.remove(drop)
    return None


def _stored(p: Passage) -> Passage:
    kept = ("text", "source", "title", "section", "document_id", "chunk", "content_hash")
    return {k: p.get(k) for k in kept}


def with_splits(rows: list[dict[str, Any]], held_out: float, seed: int) -> list[dict[str, Any]]:
    """The rows sorted by id, each with its split (fixed per example, as a build's)."""
    rows = sorted(rows, key=lambda r: r["id"])
    splits = assign_splits([r["id"] for r in rows], held_out, seed)
    return [{**r, "split": splits[r["id"]]} for r in rows]


def examples(
    generated: list[tuple[Passage, list[Pair]]],
    passages: list[Passage],
    recipe: Recipe,
    collection: str,
    count_tokens: Callable[[list[dict[str, str]]], int],
) -> tuple[list[dict[str, Any]], int]:
    """The dataset rows of the kept pairs, with their splits, and how many were left
    out because even their passage alone is longer than recipe.max_tokens."""
    rows = []
    too_long = 0
    for passage, pairs in generated:
        for pair in pairs:
            if pair.rejected:
                continue
            row = record(
                passage, pair.question, pair.answer, passages, recipe, collection, count_tokens
            )
            if row is None:
                too_long += 1
            else:
                rows.append(row)
    return with_splits(rows, recipe.held_out, recipe.seed), too_long
