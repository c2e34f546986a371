"""The two fronts of sources: the admin API (audited) and `docchat sources`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import app as cli
from app.components import build_components
from app.main import create_app
from app.settings import Settings
from app.store import audit
from tests.conftest import Models


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    for i in range(3):
        (shelf / f"p{i}.md").write_text(f"# Page {i}\n\nThe sprocket number {i} is green.\n")
    return shelf


@pytest.fixture
def api(settings: Settings, models: Models) -> Iterator[TestClient]:
    """The real app as the one writer of its stores (as `docchat serve` runs)."""
    components = build_components(
        settings, writer=True, embedder=models.embedder, engine=models.engine
    )
    with TestClient(create_app(settings, components, owns_components=True)) as client:
        yield client


def test_admin_api_adds_syncs_shows_and_removes(
    api: TestClient, folder: Path, settings: Settings
) -> None:
    body = {
        "name": "shelf",
        "collection": "shelf",
        "kind": "folder",
        "config": {"path": str(folder)},
    }
    assert api.post("/api/admin/sources", json=body).status_code == 201
    assert api.post("/api/admin/sources", json=body).status_code == 409
    wrong = {**body, "name": "bad", "config": {"path": str(folder), "typo": 1}}
    refused = api.post("/api/admin/sources", json=wrong)
    assert refused.status_code == 422
    assert "typo" in refused.text
    bad_cron = api.post("/api/admin/sources", json={**body, "name": "c", "cron": "0 3 * *"})
    assert bad_cron.status_code == 422
    assert "5 fields" in bad_cron.text
    nightly = api.post("/api/admin/sources", json={**body, "name": "n", "cron": "0 3 * * 1-5"})
    assert nightly.status_code == 201
    assert nightly.json()["cron"] == "0 3 * * 1-5"
    assert nightly.json()["next_run_at"][11:16] == "03:00"
    assert api.delete("/api/admin/sources/n").status_code == 200
    assert api.post("/api/admin/sources/shelf/sync").status_code == 202
    deadline = time.monotonic() + 60
    while (shown := api.get("/api/admin/sources/shelf").json())["last_status"] in (None, "running"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert shown["last_status"] == "completed"
    assert shown["last_counts"]["added"] == 3
    assert shown["last_seconds"] > 0
    assert [s["name"] for s in api.get("/api/admin/sources").json()] == ["shelf"]
    metrics = api.get("/metrics").text
    assert 'docchat_source_failing{collection="shelf",kind="folder",source="shelf"} 0.0' in metrics
    assert (
        'docchat_source_last_sync_files{collection="shelf",kind="folder",outcome="added"' in metrics
    )
    gone = api.delete("/api/admin/sources/shelf")
    assert gone.json() == {"removed": "shelf", "documents_removed": 3}
    assert api.get("/api/admin/sources/shelf").status_code == 404
    events = api.get("/api/admin/audit", params={"action": "api"}).json()
    actions = {e["action"] for e in events}
    assert any("source" in a for a in actions), actions
    assert audit.ACTIONS  # the generic api.* events need no entry of their own


def test_cli_add_list_sync_show_remove(
    settings: Settings, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCCHAT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DOCCHAT_SECRETS_DIR", str(settings.data_dir / "none"))
    monkeypatch.setenv("DOCCHAT_EMBEDDING__BACKEND", "torch")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["sources", *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert "added folder source shelf" in run(
        "add", "shelf", "folder", str(folder), "--collection", "shelf", "--every", "6h"
    )
    bad = runner.invoke(cli, ["sources", "add", "x", "website", "ftp://a", "--collection", "abc"])
    assert bad.exit_code == 1
    assert "http" in bad.output
    assert "every 6h" in run("list")
    synced = run("sync", "shelf")
    assert "added 3" in synced
    assert "scope of shelf:" in synced
    shown = json.loads(run("show", "shelf", "--json"))
    assert shown["last_status"] == "completed"
    assert shown["last_counts"]["unchanged"] == 0
    assert "no source is due" in run("sync", "--due")
    assert "3 of its documents" in run("remove", "shelf")
