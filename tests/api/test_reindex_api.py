"""Reindex through the server (the embedded store's way: the server is its one writer):
the job runs in the server, which keeps answering and serves the new index at once."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.components import build_components
from app.main import create_app
from tests.conftest import CORPUS, Models, ingest_into, make_settings

pytestmark = pytest.mark.slow
QUESTION = "How many days are backups kept?"


@pytest.fixture
def client(tmp_path: Path, models: Models) -> Iterator[TestClient]:
    docs = tmp_path / "docs"
    shutil.copytree(CORPUS / "admin", docs / "admin")
    shutil.copy(CORPUS / "guide.md", docs)
    settings = make_settings(tmp_path / "data", llm={"max_tokens": 16, "temperature": 0.0})
    ingest_into(settings, models.embedder, docs)
    components = build_components(settings, embedder=models.embedder, engine=models.engine)
    with TestClient(create_app(settings, components)) as test_client:
        yield test_client
    components.close()


def wait_done(client: TestClient) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while True:
        state = client.get("/api/admin/reindex").json()
        if state["job"]["state"] in ("done", "failed"):
            return dict(state)
        assert time.monotonic() < deadline
        time.sleep(0.2)


def answer(client: TestClient) -> set[str]:
    response = client.post("/api/chat", json={"question": QUESTION, "stream": False})
    assert response.status_code == 200, response.text
    return {c["source"] for c in response.json()["citations"]}


def test_reindex_rollback_and_drop_through_the_server(client: TestClient) -> None:
    assert "docs/admin/backup.rst" in answer(client)
    started = client.post("/api/admin/reindex", json={"backend": "onnx"})
    assert started.status_code == 202, started.text
    assert "docs/admin/backup.rst" in answer(client)  # answering meanwhile
    state = wait_done(client)
    assert state["job"]["state"] == "done", state
    assert state["index"]["target"]["name"] == "docs--g1"
    assert state["index"]["previous"]["name"] == "docs"
    assert "docs/admin/backup.rst" in answer(client)  # from the new index, no restart

    assert client.post("/api/admin/reindex", json={"action": "rollback"}).status_code == 202
    state = wait_done(client)
    assert state["job"]["state"] == "done", state
    assert state["index"]["target"]["name"] == "docs"
    assert "docs/admin/backup.rst" in answer(client)

    assert client.post("/api/admin/reindex", json={"action": "drop-previous"}).status_code == 202
    state = wait_done(client)
    assert state["index"]["previous"] is None
    assert client.post("/api/admin/reindex", json={"action": "rollback"}).status_code == 202
    state = wait_done(client)
    assert state["job"]["state"] == "failed"
    assert "no previous index" in state["job"]["error"]
