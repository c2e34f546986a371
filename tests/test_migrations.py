"""The Alembic migrations create the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect

from app.store.db import Database, alembic_config
from app.store.models import Base


def test_upgrade_creates_every_table_and_is_idempotent(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.migrate()
    db.migrate()  # a second start-up must not fail or change anything
    tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
    db.close()


def test_models_and_migrations_agree(tmp_path: Path) -> None:
    """Fails when a model changes without a new migration (alembic's own check)."""
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.migrate()
    command.check(alembic_config(db.engine))
    db.close()


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.migrate()
    command.downgrade(alembic_config(db.engine), "base")
    assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
    db.migrate()
    assert set(Base.metadata.tables) <= set(inspect(db.engine).get_table_names())
    db.close()


def test_upgrade_in_place_keeps_existing_rows(tmp_path: Path) -> None:
    """A database made by the first release upgrades with its conversations intact."""
    from sqlalchemy import text

    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    command.upgrade(alembic_config(db.engine), "0001")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO conversations (id, title, created_at) VALUES ('c1', 't', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO messages (id, conversation_id, seq, role, content, status, citations,"
                " created_at) VALUES ('m1', 'c1', 1, 'user', 'hello', 'complete', '[]',"
                " '2026-01-01')"
            )
        )
    db.migrate()
    with db.session() as session:
        from app.store.models import Message

        message = session.get_one(Message, "m1")
        assert message.content == "hello"
        assert message.checks == {}
    db.close()
