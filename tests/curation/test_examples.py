"""Curated examples from real rated answers, by hand and from JSONL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from app.curation import examples
from app.curation.errors import CurationError, NotFound
from app.store.db import Database
from app.store.models import Chunk, Document, Feedback
from tests.curation.conftest import FIRST, SECOND, Rated


def test_accept_keeps_question_turns_passages_hashes_and_origin(rated: Rated, db: Database) -> None:
    second = rated.second
    assert second["citations"], "the question must be answered from the docs"
    with db.session() as session:
        # Other tests may have taken this answer already: taking it again updates it.
        example, _ = examples.from_message(
            session, second["message_id"], reviewer="alice", default_collection="docs"
        )
        assert example.question == SECOND
        assert example.turns == [
            {"role": "user", "content": FIRST},
            {"role": "assistant", "content": rated.first["answer"]},
        ]
        assert example.answer == second["answer"].strip()
        assert example.model_answer is None
        assert (example.origin, example.message_id, example.reviewer) == (
            "feedback",
            second["message_id"],
            "alice",
        )
        feedback = session.scalars(
            select(Feedback).where(Feedback.message_id == second["message_id"])
        ).one()
        assert (example.feedback_id, example.rating, example.comment) == (
            feedback.id,
            -1,
            "say widgetctl --version",
        )
        assert len(example.passages) == len(second["citations"])
        for passage, citation in zip(example.passages, second["citations"], strict=True):
            document = session.get_one(Document, citation["document_id"])
            chunk = session.scalars(
                select(Chunk).where(
                    Chunk.document_id == document.id, Chunk.ord == citation["chunk"]
                )
            ).one()
            assert passage["text"] == chunk.text
            assert passage["source"] == citation["source"]
            assert passage["content_hash"] == document.content_hash
            assert passage["document_id"] == document.id
        assert example.collection == "docs"
        assert example.status == "active"
        # Plain messages only: nothing of a model's template or tokens.
        stored = json.dumps(examples.as_dict(example))
        assert "<|im_start|>" not in stored
        assert "tokens" not in stored
        example_id = example.id

    with db.session() as session:
        again, created = examples.from_message(
            session,
            second["message_id"],
            reviewer="bob",
            default_collection="docs",
            answer="  Run `widgetctl --version`.\x00 ",
        )
        assert not created
        assert again.id == example_id
        assert again.answer == "Run `widgetctl --version`."
        assert again.model_answer == second["answer"]
        assert again.reviewer == "bob"


def test_the_first_answer_has_no_turns_and_a_thumbs_up(rated: Rated, db: Database) -> None:
    with db.session() as session:
        example, _ = examples.from_message(
            session, rated.first["message_id"], reviewer="alice", default_collection="docs"
        )
        assert (example.question, example.turns, example.rating) == (FIRST, [], 1)
        assert examples.as_dict(example)["rating"] == "up"


def test_refusals(rated: Rated, db: Database) -> None:
    with db.session() as session:
        with pytest.raises(NotFound):
            examples.from_message(session, "nope", reviewer="a", default_collection="docs")
        with pytest.raises(CurationError, match="answer: must not be blank"):
            examples.from_message(
                session,
                rated.first["message_id"],
                reviewer="a",
                default_collection="docs",
                answer=" \n",
            )
        with pytest.raises(NotFound, match="no document"):
            examples.add(session, "q", "a", collection="docs", reviewer="a", sources=["nope.md"])
        with pytest.raises(NotFound):
            examples.drop(session, "nope", reviewer="a")


def test_add_by_hand_takes_passages_from_the_named_documents(db: Database) -> None:
    with db.session() as session:
        example = examples.add(
            session,
            "Where is the configuration file?",
            "In /etc/widget/widget.toml.",
            collection="docs",
            reviewer="carol",
            sources=["guide.md", "notes.txt#0"],
        )
        guide, notes = example.passages
        assert "widget.toml" in guide["text"]
        document = session.get_one(Document, guide["document_id"])
        assert (guide["source"], guide["content_hash"]) == (document.source, document.content_hash)
        assert notes["source"].endswith("notes.txt")
        assert notes["chunk"] == 0
        assert (example.origin, example.status, example.message_id) == ("manual", "active", None)


def test_import_jsonl_is_all_or_nothing_and_skips_what_is_curated(db: Database) -> None:
    rows: list[dict[str, Any]] = [
        {"question": "Is an empty configuration valid?", "answer": "Yes.", "sources": ["guide.md"]},
        {
            "question": "And then?",
            "answer": "Start it.",
            "turns": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
            "passages": [{"text": "Start the server with widgetctl start.", "source": "ops"}],
        },
    ]
    lines = [json.dumps(r) for r in rows]
    with db.session() as session:
        added, skipped = examples.import_jsonl(session, lines, collection="docs", reviewer="d")
        assert (len(added), skipped) == (2, 0)
        assert added[1].turns == rows[1]["turns"]
        assert added[1].passages[0]["content_hash"] is None  # free text: never stale
        assert {e.origin for e in added} == {"import"}
    with db.session() as session:
        again, skipped = examples.import_jsonl(session, lines, collection="docs", reviewer="d")
        assert (again, skipped) == ([], 2)
    bad = [json.dumps({"question": "new?", "answer": "yes"}), '{"question": "x"}']
    with pytest.raises(CurationError, match="line 2: answer"), db.session() as session:
        examples.import_jsonl(session, bad, collection="docs", reviewer="d")
    with db.session() as session:
        assert not [e for e in examples.listed(session) if e.question == "new?"]
