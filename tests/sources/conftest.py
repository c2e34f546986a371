"""Fixtures of the source tests: stores on a temp data dir and a Syncer over them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.components import open_ingestor
from app.settings import Settings
from app.store.models import Document
from ingest.sources.sync import Syncer
from tests.conftest import Models, make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a temp data dir; crawls may reach loopback (the test servers)."""
    return make_settings(
        tmp_path / "data",
        sources={"allow_private_addresses": True, "credentials": {"repo": "s3cret-token-1"}},
    )


@contextmanager
def syncing(settings: Settings, models: Models) -> Iterator[Syncer]:
    """A Syncer over the settings' stores (the one vector-store writer while open)."""
    with open_ingestor(settings, embedder=models.embedder, max_file_bytes=1_000_000) as ingestor:
        yield Syncer(settings, ingestor)


def documents(settings: Settings, models: Models) -> dict[str, str]:
    """The collection's documents: citation -> status."""
    with syncing(settings, models) as syncer, syncer.db.session() as session:
        return {d.source: d.status for d in session.scalars(select(Document))}


@pytest.fixture
def sync(settings: Settings, models: Models) -> Callable[..., Any]:
    """Sync a source by name in a fresh Syncer, as separate commands would."""

    def run(name: str, **options: Any) -> Any:
        with syncing(settings, models) as syncer:
            return syncer.sync(name, **options)

    return run
