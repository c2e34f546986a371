"""Alembic environment: runs migrations on the engine the app hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine, text

from app.store import collections, people, sources  # noqa: F401  (their tables join Base.metadata)
from app.store.models import Base

config = context.config
target_metadata = Base.metadata

# Any fixed number, the same in every process: PostgreSQL's advisory lock on it serializes
# migrations ("docchat" in ASCII).
MIGRATION_LOCK_KEY = 0x646F6363686174


def run_migrations_online() -> None:
    """Use the app's engine when given one (normal case), else the configured URL."""
    engine: Engine | None = config.attributes.get("engine")
    if engine is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things in place: batch mode copies the table.
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Replicas, the server and the CLI may start together on an empty database:
                # the first migrates, the others wait here, then find the schema current.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            context.run_migrations()
        connection.commit()


run_migrations_online()
