"""Retention and deletion on a real database and the real app: old conversations go with
their messages and ratings, recent ones and curated examples stay; users delete only
their own conversations, admins any or all of a key's."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select

from app.components import Components, build_components, open_database
from app.curation import examples
from app.main import create_app
from app.settings import Settings
from app.store import audit, conversations, feedback, retention
from app.store.db import Database
from app.store.models import Conversation, CuratedExample, Feedback, Message, utcnow
from tests.conftest import Models, bearer, make_settings, run_docchat, with_auth


def converse(
    db: Database, *, days_ago: float, owner: str | None = None, rater: str = "rater"
) -> tuple[str, str]:
    """A conversation with a question, an answer and a rating, last active `days_ago`;
    its id and the answer's id."""
    when = utcnow() - timedelta(days=days_ago)
    with db.session() as session:
        conversation = conversations.create(session, "How do I install it?", owner)
        conversation.created_at = when
        question = conversations.add_message(session, conversation.id, "user", content="Q?")
        answer = conversations.add_message(
            session, conversation.id, "assistant", content="Run the installer."
        )
        question.created_at = answer.created_at = when
        session.flush()
        rating = feedback.give(session, answer.id, rater, "down", "a comment")
        rating.created_at = when
        return conversation.id, answer.id


def count(db: Database, model: type[object]) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(make_settings(tmp_path))
    yield database
    database.close()


def test_purge_removes_old_conversations_and_keeps_recent_ones_and_examples(db: Database) -> None:
    old, old_answer = converse(db, days_ago=40)
    recent, _ = converse(db, days_ago=2)
    with db.session() as session:
        example, _ = examples.from_message(
            session, old_answer, reviewer="rita", default_collection="docs"
        )
        example_id = example.id
    with db.session() as session:
        dry = retention.purge(
            session, conversations_before=utcnow() - timedelta(days=30), dry_run=True
        )
    assert dry.as_dict() == {"conversations": 1, "messages": 2, "feedback": 1}
    assert count(db, Conversation) == 2  # a dry run deletes nothing
    with db.session() as session:
        done = retention.purge(session, conversations_before=utcnow() - timedelta(days=30))
    assert done == dry
    with db.session() as session:
        assert session.get(Conversation, old) is None
        assert session.get(Conversation, recent) is not None
        assert session.scalar(select(func.count()).where(Message.conversation_id == old)) == 0
        kept = session.get_one(CuratedExample, example_id)
        assert kept.answer == "Run the installer."
        assert kept.message_id == old_answer  # it says where it came from, row gone or not
    assert count(db, Feedback) == 1


def test_a_conversation_still_in_use_is_not_purged(db: Database) -> None:
    conversation_id, _ = converse(db, days_ago=40)
    with db.session() as session:  # a new question today
        conversations.add_message(session, conversation_id, "user", content="And now?")
    with db.session() as session:
        counts = retention.purge(session, conversations_before=utcnow() - timedelta(days=30))
    assert counts.conversations == 0


def test_feedback_retention_on_its_own(db: Database) -> None:
    converse(db, days_ago=10)
    converse(db, days_ago=1)
    with db.session() as session:
        counts = retention.purge(
            session, conversations_before=None, feedback_before=utcnow() - timedelta(days=5)
        )
    assert counts.as_dict() == {"conversations": 0, "messages": 0, "feedback": 1}
    assert (count(db, Conversation), count(db, Feedback)) == (2, 1)


def test_scheduled_purge_runs_at_start_and_is_audited(tmp_path: Path, models: Models) -> None:
    settings = make_settings(tmp_path, retention={"conversation_days": 30})
    db = open_database(settings)
    old, _ = converse(db, days_ago=31)
    recent, _ = converse(db, days_ago=1)
    components = build_components(
        settings, writer=False, embedder=models.embedder, engine=models.engine
    )
    try:
        with TestClient(create_app(settings, components)):
            for _ in range(100):
                if count(db, Conversation) == 1:
                    break
                time.sleep(0.05)
    finally:
        components.close()
    with db.session() as session:
        assert session.get(Conversation, old) is None
        assert session.get(Conversation, recent) is not None
        (event,) = audit.events(session, action="conversations.purge")
        assert (event.actor, event.detail["conversations"], event.detail["scheduled"]) == (
            "server",
            1,
            True,
        )
    db.close()


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, models: Models
) -> Iterator[tuple[TestClient, Components, dict[str, str]]]:
    settings = make_settings(tmp_path_factory.mktemp("deletion"))
    components = build_components(
        settings, writer=False, embedder=models.embedder, engine=models.engine
    )
    keys = {
        name: components.guards.keys.create(name, scope)  # type: ignore[arg-type]
        for name, scope in (("alice", "chat"), ("bob", "chat"), ("boss", "admin"))
    }
    try:
        with TestClient(create_app(with_auth(settings), components)) as client:
            yield client, components, keys
    finally:
        components.close()


def key_id(key: str) -> str:
    return key.split("_")[1]


def test_users_delete_only_their_own_conversations(
    served: tuple[TestClient, Components, dict[str, str]],
) -> None:
    client, components, keys = served
    db = components.db
    mine, _ = converse(db, days_ago=0, owner=key_id(keys["alice"]))
    theirs, _ = converse(db, days_ago=0, owner=key_id(keys["bob"]))
    refused = client.delete(f"/api/conversations/{theirs}", headers=bearer(keys["alice"]))
    assert refused.status_code == 404  # another key's conversation looks missing
    assert client.delete(f"/api/conversations/{mine}").status_code == 401
    deleted = client.delete(f"/api/conversations/{mine}", headers=bearer(keys["alice"]))
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"conversations": 1, "messages": 2, "feedback": 1, "dry_run": False}
    gone = client.get(f"/api/conversations/{mine}", headers=bearer(keys["alice"]))
    assert gone.status_code == 404
    assert (
        client.get(f"/api/conversations/{theirs}", headers=bearer(keys["bob"])).status_code == 200
    )
    with db.session() as session:
        (event,) = audit.events(session, action="conversation.delete")
        # Typed: the key's id, never its chosen name.
        assert (event.actor, event.target) == (f"key:{key_id(keys['alice'])}", mine)


def test_admins_delete_any_conversation_and_all_of_a_key(
    served: tuple[TestClient, Components, dict[str, str]],
) -> None:
    client, components, keys = served
    db = components.db
    boss = bearer(keys["boss"])
    one, _ = converse(db, days_ago=0, owner=key_id(keys["bob"]))
    two, _ = converse(db, days_ago=0, owner=key_id(keys["bob"]), rater="bob")
    three, _ = converse(db, days_ago=0, owner=key_id(keys["alice"]), rater="bob")
    assert client.delete(f"/api/conversations/{one}", headers=boss).status_code == 200
    chat = client.delete("/api/admin/keys/bob/conversations", headers=bearer(keys["bob"]))
    assert chat.status_code == 403
    dry = client.delete("/api/admin/keys/bob/conversations", params={"dry_run": True}, headers=boss)
    assert dry.json()["dry_run"] is True
    assert dry.json()["conversations"] >= 1
    done = client.delete("/api/admin/keys/bob/conversations", headers=boss)
    assert done.status_code == 200, done.text
    with db.session() as session:
        assert session.get(Conversation, two) is None
        assert session.get(Conversation, three) is not None  # alice's stays ...
        assert (
            session.scalar(select(func.count()).where(Feedback.given_by == "bob")) == 0
        )  # ... without bob's rating
    missing = client.delete("/api/admin/keys/nobody/conversations", headers=boss)
    assert missing.status_code == 404
    purged = client.post("/api/admin/purge", params={"older_than_days": 3650}, headers=boss)
    assert purged.status_code == 200, purged.text
    with db.session() as session:
        kinds = {e.action for e in audit.events(session, action="conversation")}
        kinds |= {e.action for e in audit.events(session, action="conversations")}
    assert {"conversation.delete", "conversations.delete_for_key", "conversations.purge"} <= kinds


def test_cli_purge_dry_run_first_then_delete(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    db = open_database(settings)
    old, _ = converse(db, days_ago=40, owner="k1")
    converse(db, days_ago=1)
    db.close()
    env = {**os.environ, "DOCCHAT_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    dry = run_docchat("conversations", "purge", "--older-than", "30d", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would delete 1 conversations, 2 messages, 1 ratings" in dry.stdout
    done = run_docchat("conversations", "purge", "--older-than", "30d", "--json", env=env)
    assert json.loads(done.stdout)["conversations"] == 1
    nothing = run_docchat("conversations", "purge", env=env)
    assert nothing.returncode == 1
    assert "nothing to purge" in nothing.stderr
    deleted = run_docchat("conversations", "delete", "--conversation", old, env=env)
    assert deleted.returncode == 1  # already purged
    listed = run_docchat("audit", "list", "--action", "conversations", "--json", env=env)
    (event,) = json.loads(listed.stdout)
    assert event["actor"].startswith("cli:")
    assert event["detail"]["conversations"] == 1


def test_purge_ages_past_any_date_are_refused_over_http(
    served: tuple[TestClient, Components, dict[str, str]],
) -> None:
    """Before issue #22's fix each of these was a 500 (OverflowError: now minus the age
    is before the year 1); now a 422 problem, and nothing is deleted."""
    client, components, keys = served
    boss = bearer(keys["boss"])
    kept, _ = converse(components.db, days_ago=400)
    for age in ("inf", "1e10", "1e308", "nan", "36501"):
        refused = client.post("/api/admin/purge", params={"older_than_days": age}, headers=boss)
        assert refused.status_code == 422, (age, refused.text)
        error = refused.json()["error"]
        assert error["type"] == "invalid_request"
        assert "older_than_days" in error["message"]
    with components.db.session() as session:
        assert session.get(Conversation, kept) is not None
    century = client.post(
        "/api/admin/purge", params={"older_than_days": 36500, "dry_run": True}, headers=boss
    )
    assert century.status_code == 200, century.text


def test_cli_purge_refuses_ages_past_any_date_and_zero(tmp_path: Path) -> None:
    """Before issue #22's fix `--older-than 99999999999d` ended in an OverflowError
    traceback, and `--older-than 0d` deleted every conversation although 0 means "kept
    forever" in retention.conversation_days."""
    settings = make_settings(tmp_path)
    db = open_database(settings)
    converse(db, days_ago=1)
    db.close()
    env = {**os.environ, "DOCCHAT_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    for option in ("--older-than", "--feedback-older-than"):
        huge = run_docchat("conversations", "purge", option, "99999999999d", env=env)
        assert huge.returncode == 1, huge.stdout
        assert "too long a span: at most 36500 days" in huge.stderr
        assert "Traceback" not in huge.stderr
        zero = run_docchat("conversations", "purge", option, "0d", env=env)
        assert zero.returncode == 1, zero.stdout
        assert "0 means 'kept forever'" in zero.stderr
        assert "Traceback" not in zero.stderr
    db = open_database(settings)
    assert (count(db, Conversation), count(db, Feedback)) == (1, 1)
    db.close()


def test_retention_settings_past_any_date_are_refused() -> None:
    """Before issue #22's fix, conversation_days=inf was taken, and each scheduled purge
    then failed with an OverflowError (now minus the age is before the year 1)."""
    for days in (float("inf"), 1e10, 36_501):
        with pytest.raises(ValidationError, match="less than or equal to 36500"):
            Settings(_env_file=None, retention={"conversation_days": days})  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="less than or equal to 36500"):
            Settings(_env_file=None, retention={"feedback_days": days})  # type: ignore[arg-type]
    assert retention.cutoff(36_500) is not None
