"""Stores on temporary data dirs, embedded or on the servers, for the retrieval tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.components import open_database, open_vectors
from app.rag.retrieval import Retriever
from app.settings import Settings
from app.store.db import Database
from app.store.vectors import VectorStore
from tests.conftest import CORPUS, Models, ingest_into, make_settings


@dataclass
class Stores:
    """A collection that a test may ingest into and search."""

    settings: Settings
    docs: Path  # the folder ingested; tests add, change and delete files in it
    models: Models

    def ingest(self) -> None:
        ingest_into(self.settings, self.models.embedder, self.docs)

    def retriever(self, db: Database, vectors: VectorStore, **rag: object) -> Retriever:
        settings = self.settings.model_copy(
            update={"rag": self.settings.rag.model_copy(update=rag)}
        )
        return Retriever.configured(
            settings.rag,
            self.models.embedder,
            vectors,
            db,
            settings.vectors.collection,
            data_dir=settings.data_dir,
        )

    def open(self) -> tuple[Database, VectorStore]:
        """Readers of the stores (close them before the next ingest)."""
        return open_database(self.settings), open_vectors(self.settings, writer=False)


@pytest.fixture(params=["embedded", "servers"])
def stores(request: pytest.FixtureRequest, tmp_path: Path, models: Models) -> Stores:
    """The fixture corpus's good files, ingested into SQLite and on-disk Chroma, or into
    PostgreSQL and a Chroma server."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("guide.md", "notes.txt"):
        shutil.copy(CORPUS / name, docs / name)
    shutil.copytree(CORPUS / "admin", docs / "admin")
    if request.param == "embedded":
        settings = make_settings(tmp_path / "data")
    else:
        from tests.scaleout.conftest import scaleout_settings

        settings = scaleout_settings(
            tmp_path / "data",
            request.getfixturevalue("postgres"),
            request.getfixturevalue("chroma_server"),
        )
    found = Stores(settings, docs, models)
    found.ingest()
    return found
