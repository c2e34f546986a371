"""Settings that put docchat on the scale-out stores: a Chroma server and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from app.settings import Settings
from tests.conftest import make_settings
from tests.servers import ChromaServer, PostgresServer


def scaleout_settings(data_dir: Path, postgres: PostgresServer, chroma: ChromaServer) -> Settings:
    """Settings on a fresh PostgreSQL database and a collection of its own on the server."""
    return make_settings(
        data_dir,
        vectors={"url": chroma.url, "collection": f"t-{uuid.uuid4().hex[:12]}"},
        database={"url": postgres.new_database()},
    )


@pytest.fixture
def servers_settings(
    tmp_path: Path, postgres: PostgresServer, chroma_server: ChromaServer
) -> Settings:
    return scaleout_settings(tmp_path / "data", postgres, chroma_server)
