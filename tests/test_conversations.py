"""Conversation storage on both databases: what the chat routes rely on."""

from __future__ import annotations

import threading

from app.store import conversations
from app.store.db import Database
from app.store.models import Conversation


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
