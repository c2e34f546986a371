"""Datasets: deterministic, immutable snapshots with a fixed split; diff and export."""

from __future__ import annotations

import hashlib
import json

import pytest

from app.curation import datasets, examples, export
from app.curation.datasets import assign_splits, split_score
from app.curation.errors import Conflict, CurationError, NotFound
from app.store.db import Database
from app.store.models import CuratedExample
from tests.curation.conftest import Rated


def _seed_examples(rated: Rated, db: Database) -> None:
    """The two rated answers and a few by hand, so that both splits fill."""
    with db.session() as session:
        for answer in (rated.first, rated.second):
            examples.from_message(
                session, answer["message_id"], reviewer="r", default_collection="docs"
            )
        for n in range(4):
            examples.add(
                session,
                f"Question {n} about the port?",
                f"Answer {n}.",
                collection="docs",
                reviewer="r",
                sources=["guide.md"],
            )


def test_build_is_deterministic_immutable_and_on_disk(rated: Rated, db: Database) -> None:
    _seed_examples(rated, db)
    data_dir = rated.settings.data_dir
    with db.session() as session:
        active = sorted(e.id for e in examples.listed(session, status="active", limit=1000))
        a = datasets.build(session, data_dir, "det-a", held_out=0.3, seed=7, created_by="me")
    with db.session() as session:
        b = datasets.build(session, data_dir, "det-b", held_out=0.3, seed=7)
        other_seed = datasets.build(session, data_dir, "det-seed", held_out=0.3, seed=8)
    assert [r["id"] for r in a.rows] == active
    assert a.sha256 == b.sha256
    assert a.rows == b.rows
    assert other_seed.sha256 != a.sha256 or len(active) < 2
    assert a.n_examples == len(active) == a.n_train + a.n_held_out
    assert a.n_train >= 1
    assert a.n_held_out >= 1
    assert {r["split"] for r in a.rows} == {"train", "held-out"}
    assert a.path == data_dir / "datasets" / "det-a.jsonl"
    assert hashlib.sha256(a.path.read_bytes()).hexdigest() == a.sha256
    assert a.file_ok()
    assert [json.loads(line)["id"] for line in a.path.read_text().splitlines()] == active
    # Nothing half-written is left beside the files.
    assert sorted(p.name for p in a.path.parent.iterdir() if "det-" in p.name) == [
        "det-a.jsonl",
        "det-b.jsonl",
        "det-seed.jsonl",
    ]

    with pytest.raises(Conflict, match="immutable"), db.session() as session:
        datasets.build(session, data_dir, "det-a")
    with db.session() as session:
        loaded = datasets.load(session, data_dir, "det-a")
        assert loaded == a
        assert loaded.info()["created_by"] == "me"
        with pytest.raises(NotFound):
            datasets.load(session, data_dir, "nope")
        # "abc\n" passed `^...$` with re.match and wrote datasets/abc\n.jsonl (issue #22).
        for bad in ("../x", "", "a b", "abc\n", "abc\n\n", "\nabc"):
            with pytest.raises(CurationError, match="name"):
                datasets.build(session, data_dir, bad)
        with pytest.raises(CurationError, match="held_out"):
            datasets.build(session, data_dir, "x", held_out=1.0)
        with pytest.raises(CurationError, match="no active"):
            datasets.build(session, data_dir, "x", collection="elsewhere")


def test_the_split_is_fixed_per_example() -> None:
    ids = [f"{n:032x}" for n in range(50)]
    first = assign_splits(ids, 0.2, 0)
    assert first == assign_splits(list(reversed(ids)), 0.2, 0)
    # Adding examples never moves an old one across the split.
    more = assign_splits([*ids, *(f"{n:032x}" for n in range(50, 80))], 0.2, 0)
    assert {i: more[i] for i in ids} == first
    assert 0.05 < list(first.values()).count("held-out") / 50 < 0.4
    assert 0 <= split_score(0, "x") < 1
    assert assign_splits(["a"], 0.2, 0) in ({"a": "train"}, {"a": "held-out"})
    assert set(assign_splits(["a", "b"], 0.01, 0).values()) == {"train", "held-out"}
    assert set(assign_splits(["a", "b"], 0.0, 0).values()) == {"train"}


def test_diff_shows_added_removed_and_changed(rated: Rated, db: Database) -> None:
    _seed_examples(rated, db)
    data_dir = rated.settings.data_dir
    with db.session() as session:
        datasets.build(session, data_dir, "diff-a")
        ids = sorted(e.id for e in examples.listed(session, status="active", limit=1000))
        examples.drop(session, ids[0], reviewer="r")
        changed = session.get_one(CuratedExample, ids[1])
        changed.answer = "A better answer."
        added = examples.add(
            session, "A new question?", "A new answer.", collection="docs", reviewer="r"
        )
    with db.session() as session:
        datasets.build(session, data_dir, "diff-b")
        found = datasets.diff(session, "diff-a", "diff-b")
    assert [r["id"] for r in found["added"]] == [added.id]
    assert [r["id"] for r in found["removed"]] == [ids[0]]
    # With six examples a split can hold one: when the dropped example was it, the rule
    # "each split gets at least one" moves another across, and the diff says so.
    before = assign_splits(ids, 0.2, 0)
    after = assign_splits([*ids[1:], added.id], 0.2, 0)
    moved = {i for i in ids[1:] if before[i] != after[i]}
    expected = sorted(
        (i, ["answer"] * (i == ids[1]) + ["split"] * (i in moved)) for i in {ids[1], *moved}
    )
    assert sorted((r["id"], r["fields"]) for r in found["changed"]) == expected
    assert found["unchanged"] == len(ids) - 2 - len(moved - {ids[1]})


def test_export_openai_chat_and_training_rows(rated: Rated, db: Database) -> None:
    _seed_examples(rated, db)
    with db.session() as session:
        snapshot = datasets.build(session, rated.settings.data_dir, "export-a", held_out=0.25)
    lines = list(export.lines(snapshot, "openai-chat", "all"))
    assert len(lines) == snapshot.n_examples
    by_question = {}
    for line in lines:
        value = json.loads(line)
        assert list(value) == ["messages"]
        messages = value["messages"]
        roles = [m["role"] for m in messages]
        assert roles[0] == "system"
        assert roles[-2:] == ["user", "assistant"]
        assert set(roles) <= {"system", "user", "assistant"}
        assert all(isinstance(m["content"], str) and m["content"] for m in messages)
        by_question[messages[-2]["content"]] = messages
    row = next(r for r in snapshot.rows if r["turns"] and r["passages"])
    messages = next(m for q, m in by_question.items() if q.endswith("Question: " + row["question"]))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert messages[1]["content"] == row["turns"][0]["content"]
    assert row["passages"][0]["text"] in messages[3]["content"]
    assert row["passages"][0]["source"] in messages[3]["content"]
    assert messages[-1]["content"] == row["answer"]
    assert "Internal marker" not in messages[0]["content"]

    train = export.chat_rows(snapshot, "train")
    held = export.chat_rows(snapshot, "held-out")
    assert (len(train), len(held)) == (snapshot.n_train, snapshot.n_held_out)
    assert all(isinstance(m, dict) and set(m) == {"role", "content"} for r in train for m in r)
    raw = [json.loads(line) for line in export.lines(snapshot, "jsonl", "held-out")]
    assert [r["id"] for r in raw] == [r["id"] for r in snapshot.split("held-out")]
    assert {r["split"] for r in raw} == {"held-out"}
