"""The Alembic migrations create the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from app.components import open_database
from app.store.db import Database, alembic_config
from app.store.models import Base, IngestRun, Message, utcnow
from app.telemetry.metrics import IngestCollector
from tests.conftest import make_settings
from tests.servers import PostgresServer


def test_upgrade_creates_every_table_and_is_idempotent(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    db.migrate()  # a second start-up must not fail or change anything
    tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
    db.close()


def test_models_and_migrations_agree(database_url: str) -> None:
    """Fails when a model changes without a new migration (alembic's own check)."""
    db = Database(database_url)
    db.migrate()
    command.check(alembic_config(db.engine))
    db.close()


def test_downgrade_to_base_and_back(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    command.downgrade(alembic_config(db.engine), "base")
    assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
    db.migrate()
    assert set(Base.metadata.tables) <= set(inspect(db.engine).get_table_names())
    db.close()


def test_upgrade_in_place_keeps_existing_rows(database_url: str) -> None:
    """A database made by the first release upgrades with its conversations intact."""
    db = Database(database_url)
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
        message = session.get_one(Message, "m1")
        assert message.content == "hello"
        assert message.checks == {}
        assert message.created_at.tzinfo is not None or db.engine.dialect.name == "sqlite"
    db.close()


def _schema(db: Database) -> dict[str, Any]:
    """Tables with their columns, nullability, keys, indexes and constraints, by name."""
    found = inspect(db.engine)
    schema: dict[str, Any] = {}
    for table in sorted(found.get_table_names()):
        schema[table] = {
            "columns": {(c["name"], c["nullable"]) for c in found.get_columns(table)},
            "pk": tuple(found.get_pk_constraint(table)["constrained_columns"]),
            "fks": {
                (tuple(f["constrained_columns"]), f["referred_table"], f["options"].get("ondelete"))
                for f in found.get_foreign_keys(table)
            },
            "indexes": {
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in found.get_indexes(table)
                # PostgreSQL also lists the index behind each unique constraint.
                if "duplicates_constraint" not in i
            },
            "unique": {
                (u["name"], tuple(u["column_names"])) for u in found.get_unique_constraints(table)
            },
        }
    return schema


def test_postgresql_and_sqlite_get_the_same_schema(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    lite, pg = Database(f"sqlite:///{tmp_path / 'x.db'}"), Database(postgres.new_database())
    for db in (lite, pg):
        db.migrate()
    assert _schema(pg) == _schema(lite)
    lite.close()
    pg.close()


def test_postgresql_pool_sizes_come_from_the_settings(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    database = {"url": postgres.new_database(), "pool_size": 2, "pool_overflow": 1}
    settings = make_settings(tmp_path, database=database)
    db = open_database(settings)
    pool: Any = db.engine.pool
    assert (pool.size(), pool._max_overflow) == (2, 1)
    db.close()


# Separate processes, as in a deployment: Alembic's `op` and `context` are module-level
# proxies, so migrations cannot run in two threads of one process.
_MIGRATE_AT = """
import sys, time
from app.store.db import Database
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
Database(sys.argv[1]).migrate()
"""


def test_concurrent_first_starts_migrate_once(postgres: PostgresServer) -> None:
    """Server, CLI and replicas starting together on an empty PostgreSQL database all succeed."""
    url = postgres.new_database()
    start_at = str(time.time() + 8)  # after every process has imported its modules
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _MIGRATE_AT, url, start_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert [p.returncode for p in processes] == [0] * 6, "\n".join(outputs)
    db = Database(url)
    with db.engine.connect() as conn:
        version = conn.scalar(text("SELECT version_num FROM alembic_version"))
    head = ScriptDirectory.from_config(alembic_config(db.engine)).get_current_head()
    assert version == head
    db.close()


def test_datetimes_come_back_in_utc_whatever_the_local_zone(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite has no zoned type: its naive values are UTC and must read as such, or the
    ingest timestamp metric is off by the machine's zone (as it was before)."""
    db = Database(database_url)
    db.migrate()
    finished = utcnow()
    with db.session() as session:
        session.add(IngestRun(collection="c", roots="r", finished_at=finished, status="completed"))
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # UTC+9: a naive value would be 9 hours off
    time.tzset()
    try:
        with db.session() as session:
            run = session.scalars(select(IngestRun)).one()
        assert run.finished_at == finished
        assert run.finished_at.utcoffset() == timedelta(0)
        metric = {m.name: m for m in IngestCollector(db).collect()}
        value = metric["docchat_ingest_last_run_timestamp_seconds"].samples[0].value
        assert abs(value - finished.timestamp()) < 1
    finally:
        monkeypatch.undo()
        time.tzset()
        db.close()
