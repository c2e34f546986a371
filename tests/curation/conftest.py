"""A deployment of its own for the curation tests: a few corpus files ingested for real,
two real answers of the small model in one conversation, rated through the API."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.components import build_components, open_database
from app.main import create_app
from app.settings import Settings
from app.store.db import Database
from tests.conftest import CORPUS, Models, ingest_into, make_settings

FIRST = "What port does the widget server listen on by default?"
SECOND = "How do I check that the command-line tool is installed?"


@dataclass
class Rated:
    """The deployment and its two rated answers (API bodies of POST /api/chat)."""

    settings: Settings
    corpus: Path
    first: dict[str, Any]
    second: dict[str, Any]

    def env(self) -> dict[str, str]:
        """The environment of a `docchat` process on this deployment."""
        return {
            **os.environ,
            "DOCCHAT_DATA_DIR": str(self.settings.data_dir),
            "DOCCHAT_SECRETS_DIR": str(self.settings.data_dir / "no-secrets"),
            "COLUMNS": "200",
        }


def deployment(root: Path, models: Models) -> tuple[Settings, Path]:
    """A data dir with guide.md and notes.txt ingested."""
    corpus = root / "corpus"
    corpus.mkdir()
    for name in ("guide.md", "notes.txt"):
        shutil.copy(CORPUS / name, corpus / name)
    settings = make_settings(root / "data")
    ingest_into(settings, models.embedder, corpus)
    return settings, corpus


def ask(client: TestClient, question: str, conversation_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"question": question, "stream": False}
    if conversation_id:
        body["conversation_id"] = conversation_id
    response = client.post("/api/chat", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture(scope="session")
def rated(tmp_path_factory: pytest.TempPathFactory, models: Models) -> Rated:
    settings, corpus = deployment(tmp_path_factory.mktemp("curation"), models)
    components = build_components(
        settings, writer=False, embedder=models.embedder, engine=models.engine
    )
    try:
        with TestClient(create_app(settings, components)) as client:
            first = ask(client, FIRST)
            second = ask(client, SECOND, first["conversation_id"])
            for answer, rating in (
                (first, {"rating": "up"}),
                (second, {"rating": "down", "comment": "say widgetctl --version"}),
            ):
                response = client.post(
                    f"/api/messages/{answer['message_id']}/feedback", json=rating
                )
                assert response.status_code == 200, response.text
    finally:
        components.close()
    return Rated(settings, corpus, first, second)


@pytest.fixture
def db(rated: Rated) -> Iterator[Database]:
    database = open_database(rated.settings)
    yield database
    database.close()
