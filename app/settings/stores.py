"""Where state is kept: the vector store (vectors) and the database (database)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from app.settings.validation import SECTION_CONFIG


class VectorSettings(BaseModel):
    """Where chunk vectors live: an on-disk Chroma, or a Chroma server."""

    model_config = SECTION_CONFIG

    url: str | None = Field(
        None,
        description="Chroma server URL (e.g. http://chroma:8000). Empty: an embedded "
        "Chroma in `path`, which allows one writing process at a time.",
    )
    path: Path | None = Field(
        None, description="Directory of the embedded Chroma. Empty: <data_dir>/chroma."
    )
    collection: str = Field(
        "docs",
        min_length=3,
        max_length=63,
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]*[a-zA-Z0-9]$",
        description="Collection the chat answers from and ingest writes to by default.",
    )


class DatabaseSettings(BaseModel):
    """The SQL database: documents, ingest runs, conversations and messages."""

    model_config = SECTION_CONFIG

    url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pass@host/db. It may "
        "hold a password, so it is a secret. Empty: SQLite at <data_dir>/docchat.db.",
    )
    pool_size: int = Field(
        5,
        ge=1,
        description="PostgreSQL: connections each process keeps open. A server runs its "
        "database calls in worker threads, so it may use several at once.",
    )
    pool_overflow: int = Field(
        10,
        ge=0,
        description="PostgreSQL: connections opened beyond pool_size under load and closed "
        "after. Each process opens at most pool_size + pool_overflow: with replicas, keep "
        "the sum over all processes under the server's max_connections (100 by default).",
    )
