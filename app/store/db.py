"""The SQL database: engine, sessions and schema migrations (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from app.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached (server down, wrong host or credentials)."""


# Idle connections are dropped by firewalls, proxies and server restarts; recycle them
# before that and test each one on checkout instead of failing the request that gets it.
POOL_RECYCLE_S = 1800
CONNECT_TIMEOUT_S = 10


def make_engine(url: str, *, pool_size: int = 5, pool_overflow: int = 10) -> Engine:
    """An engine for `url`; SQLite gets WAL and a busy timeout so CLI and server can share it.
    The pool sizes apply to PostgreSQL (settings `database.pool_size`, `pool_overflow`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=pool_overflow,
            pool_recycle=POOL_RECYCLE_S,
            # How long a caller waits for a free pooled connection before an error.
            pool_timeout=CONNECT_TIMEOUT_S,
            # Fail fast when the server is down, rather than after the OS's TCP timeout;
            # the name shows which connections are docchat's in pg_stat_activity.
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "docchat"},
            hide_parameters=True,
        )
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, hide_parameters=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: a database error (logged with its statement) never carries the
    # values, such as a question's text (docs/data-retention.md).
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True
    )

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def alembic_config(engine: Engine) -> Config:
    """Alembic configured in code, so no alembic.ini has to be found at run time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (creates it on an empty database)."""
    command.upgrade(alembic_config(engine), "head")


def ping(engine: Engine) -> None:
    """Raise if the database cannot be reached."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


class Database:
    """The engine plus a session factory: what the rest of the app holds."""

    def __init__(self, url: str, *, pool_size: int = 5, pool_overflow: int = 10) -> None:
        self.engine = make_engine(url, pool_size=pool_size, pool_overflow=pool_overflow)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision (the first contact at start-up)."""
        try:
            migrate(self.engine)
        except (OperationalError, InterfaceError) as exc:
            # The driver's own message names host and port, never the password.
            raise DatabaseUnavailable(
                f"cannot reach the database: {' '.join(str(exc.orig).split())}; check "
                "database.url (DOCCHAT_DATABASE__URL)"
            ) from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()


def open_database(settings: Settings) -> Database:
    """The SQL database with its schema migrated to the newest revision. Here, not with
    the other components: commands that need only the database start without importing
    the vector store, the models and the chat service (seconds)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(
        settings.database_url,
        pool_size=settings.database.pool_size,
        pool_overflow=settings.database.pool_overflow,
    )
    db.migrate()
    return db
