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
