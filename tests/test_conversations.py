"""Conversation storage on both databases: what the chat routes rely on."""

from __future__ import annotations

import threading

from sqlalchemy import delete, select

from app.store import conversations, feedback
from app.store.db import Database
from app.store.models import Conversation, Feedback


def test_messages_added_at_once_get_distinct_positions(database_url: str) -> None:
    """Requests adding to one conversation together keep a total order (no shared seq)."""
    db = Database(database_url)
    db.migrate()
    with db.session() as session:
        conversation_id = conversations.create(session, "race").id
    writers, rounds = 8, 5
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def add(n: int) -> None:
        barrier.wait()
        try:
            for round_ in range(rounds):
                with db.session() as session:
                    conversations.add_message(
                        session, conversation_id, "user", content=f"{n}-{round_}"
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with db.session() as session:
        seqs = [m.seq for m in session.get_one(Conversation, conversation_id).messages]
    db.close()
    assert sorted(seqs) == list(range(1, writers * rounds + 1))


def test_nul_characters_are_dropped_on_every_backend(database_url: str) -> None:
    """PostgreSQL text cannot hold NUL; both backends store the text without it."""
    db = Database(database_url)
    db.migrate()
    with db.session() as session:
        conversation = conversations.create(session, "a\x00b")
        message = conversations.add_message(session, conversation.id, "user", content="c\x00d")
        conversations.update_message(session, message.id, content="e\x00f")
    with db.session() as session:
        stored = session.get_one(Conversation, conversation.id)
        assert (stored.title, stored.messages[0].content) == ("ab", "ef")
    db.close()


def _answered(db: Database, *turns: tuple[str, str]) -> list[str]:
    """A conversation of question/answer turns; the answers' message ids."""
    answers = []
    with db.session() as session:
        conversation_id = conversations.create(session, turns[0][0]).id
        for question, answer in turns:
            conversations.add_message(session, conversation_id, "user", content=question)
            answers.append(
                conversations.add_message(
                    session,
                    conversation_id,
                    "assistant",
                    content=answer,
                    citations=[
                        {
                            "n": 1,
                            "source": "a.md",
                            "title": "A",
                            "section": "s",
                            "score": 0.5,
                            "url": "/sources/d#chunk-0",
                            "document_id": "d",
                        }
                    ],
                ).id
            )
    return answers


def _rows(db: Database) -> list[tuple[str, str, int, str | None]]:
    with db.session() as session:
        return [
            (f.message_id, f.given_by, f.rating, f.comment)
            for f in session.scalars(select(Feedback).order_by(Feedback.id))
        ]


def test_feedback_given_again_replaces_the_keys_earlier_one(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    (answer,) = _answered(db, ("q", "a"))
    with db.session() as session:
        first = feedback.give(session, answer, "alice", "up", None)
        assert (first.rating, first.comment) == (1, None)
    with db.session() as session:
        again = feedback.give(session, answer, "alice", "down", "wrong port")
        assert (again.rating, again.comment) == (-1, "wrong port")
        assert again.created_at >= first.created_at
        feedback.give(session, answer, "bob", "up", "")
    assert _rows(db) == [(answer, "alice", -1, "wrong port"), (answer, "bob", 1, None)]
    with db.session() as session:
        mine = feedback.given_by(session, [answer, "other"], "alice")
        assert list(mine) == [answer]
        assert feedback.feedback_dict(mine[answer])["rating"] == "down"
        assert feedback.given_by(session, [answer], "carol") == {}
    db.close()


def test_feedback_given_at_once_keeps_one_row(database_url: str) -> None:
    """The upsert is one statement: racing requests of one key never both insert."""
    db = Database(database_url)
    db.migrate()
    (answer,) = _answered(db, ("q", "a"))
    writers = 8
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def rate(n: int) -> None:
        barrier.wait()
        try:
            with db.session() as session:
                feedback.give(session, answer, "alice", "up" if n % 2 else "down", f"c{n}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=rate, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    rows = _rows(db)
    assert len(rows) == 1
    assert rows[0][3] in {f"c{n}" for n in range(writers)}
    db.close()


def test_feedback_comment_is_cleaned_on_every_backend(database_url: str) -> None:
    """NUL (which PostgreSQL refuses), other controls and bidi overrides are dropped."""
    db = Database(database_url)
    db.migrate()
    (answer,) = _answered(db, ("q", "a"))
    raw = "  bad\x00 link\x1b[31m\r\nsee \u202eevil\u202c page\t2\x7f  "
    with db.session() as session:
        feedback.give(session, answer, "alice", "down", raw)
        feedback.give(session, answer, "bob", "down", "\x00\x01 \n")
        feedback.give(session, answer, "carol", "up", "x" * 5000)
    rows = {name: comment for _, name, _, comment in _rows(db)}
    assert rows["alice"] == "bad link[31m\nsee evil page\t2"
    assert rows["bob"] is None
    assert rows["carol"] == "x" * feedback.COMMENT_MAX_CHARS
    db.close()


def test_recent_feedback_shows_question_answer_and_sources(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    first, second = _answered(db, ("How to install?", "Run pip."), ("Which port?", "x" * 400))
    with db.session() as session:
        feedback.give(session, first, "alice", "up", None)
    with db.session() as session:
        feedback.give(session, second, "alice", "down", "port is wrong")
    with db.session() as session:
        items = feedback.recent(session)
        down = feedback.recent(session, "down")
        one = feedback.recent(session, limit=1)
    assert [(i["question"], i["rating"]) for i in items] == [
        ("Which port?", "down"),
        ("How to install?", "up"),
    ]
    assert down == items[:1] == one
    newest = items[0]
    assert newest["answer_excerpt"] == "x" * feedback.EXCERPT_CHARS + "…"
    assert newest["comment"] == "port is wrong"
    assert newest["given_by"] == "alice"
    assert newest["citations"] == [
        {"source": "a.md", "title": "A", "section": "s", "score": 0.5, "url": "/sources/d#chunk-0"}
    ]
    assert items[1]["answer_excerpt"] == "Run pip."
    db.close()


def test_feedback_goes_with_its_conversation(database_url: str) -> None:
    """Deleting a conversation deletes its answers' feedback (ON DELETE CASCADE)."""
    db = Database(database_url)
    db.migrate()
    (answer,) = _answered(db, ("q", "a"))
    with db.session() as session:
        feedback.give(session, answer, "alice", "up", None)
    with db.engine.begin() as conn:
        conn.execute(delete(Conversation))
    assert _rows(db) == []
    db.close()
