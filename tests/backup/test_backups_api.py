"""Snapshots from the console's API: taken into backup.folder while the server serves,
pruned to backup.keep, listed with when they were taken, verified (a damaged one refused
naming the file), each recorded in the audit trail as the admin's key; none of it for a
key without the admin scope, and a clear 409 when no folder is set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.components import Components, build_components
from app.main import create_app
from app.store import audit
from tests.conftest import Models, bearer, make_settings, with_auth
from tests.ingest.test_pipeline import run
from tests.ingest.test_quality import page, prose, write

Served = tuple[TestClient, Components, dict[str, dict[str, str]]]


@pytest.fixture
def served(tmp_path: Path, models: Models) -> Iterator[Served]:
    docs = write(tmp_path / "docs", {"a.md": page("Alpha", prose(1))})
    settings = with_auth(make_settings(tmp_path / "data"))
    run(settings, models, docs)
    settings = settings.model_copy(
        update={"backup": settings.backup.model_copy(update={"folder": tmp_path / "bk", "keep": 2})}
    )
    components = build_components(settings, embedder=models.embedder, engine=models.engine)
    keys = {s: bearer(components.guards.keys.create(f"t-{s}", s)) for s in ("chat", "admin")}  # type: ignore[arg-type]
    try:
        with TestClient(create_app(settings, components)) as client:
            yield client, components, keys
    finally:
        components.close()


def _trail(components: Components, action: str) -> list[dict[str, object]]:
    with components.db.session() as session:
        return [audit.as_dict(e) for e in audit.events(session, action=action, limit=20)]


def test_snapshots_taken_kept_listed_and_verified(served: Served, tmp_path: Path) -> None:
    client, components, keys = served
    admin = keys["admin"]
    assert client.get("/api/admin/backups", headers=keys["chat"]).status_code == 403
    assert client.post("/api/admin/backups", headers=keys["chat"], json={}).status_code == 403
    empty = client.get("/api/admin/backups", headers=admin).json()
    assert (empty["snapshots"], empty["keep"]) == ([], 2)
    assert empty["folder"] == str(tmp_path / "bk")

    taken = []
    for _ in range(3):
        made = client.post("/api/admin/backups", headers=admin, json={})
        assert made.status_code == 201, made.text
        taken.append(made.json())
    assert taken[0]["facts"]["collections"] == 1
    assert taken[0]["facts"]["records"] > 0
    assert taken[2]["pruned"] == [taken[0]["name"]]  # retention: the newest 2
    listed = client.get("/api/admin/backups", headers=admin).json()
    assert [s["name"] for s in listed["snapshots"]] == [taken[1]["name"], taken[2]["name"]]
    admin_id = next(k.id for k in components.guards.keys.list() if k.name == "t-admin")
    history = listed["history"]
    assert [e["target"] for e in history] == [t["name"] for t in reversed(taken)]
    assert {(e["actor"], e["outcome"]) for e in history} == {(f"key:{admin_id}", "ok")}
    assert len(_trail(components, "api.create_backup")) == 0  # the domain event only

    good = client.post(f"/api/admin/backups/{taken[2]['name']}/verify", headers=admin)
    assert good.status_code == 200, good.text
    assert good.json()["ok"] is True
    assert good.json()["signed_by_key"]
    damaged = tmp_path / "bk" / taken[1]["name"] / "database" / "docchat.sqlite3"
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\0")
    bad = client.post(f"/api/admin/backups/{taken[1]['name']}/verify", headers=admin)
    assert bad.status_code == 422
    assert "database/docchat.sqlite3" in bad.json()["error"]["message"]
    assert "damaged" in bad.json()["error"]["message"]
    outcomes = [e["outcome"] for e in _trail(components, "api.verify_backup")]
    assert outcomes == ["refused", "ok"]
    # Only a snapshot of the folder, by its exact name.
    outside = client.post("/api/admin/backups/..%2F..%2Fdata/verify", headers=admin)
    assert outside.status_code == 404


def test_without_a_folder_the_console_says_so(tmp_path: Path, models: Models) -> None:
    settings = with_auth(make_settings(tmp_path / "data"))
    components = build_components(settings, embedder=models.embedder, engine=models.engine)
    admin = bearer(components.guards.keys.create("t-admin", "admin"))
    try:
        with TestClient(create_app(settings, components)) as client:
            shown = client.get("/api/admin/backups", headers=admin).json()
            assert (shown["folder"], shown["snapshots"]) == (None, [])
            refused = client.post("/api/admin/backups", headers=admin, json={})
            assert refused.status_code == 409
            assert "backup.folder is not set" in refused.json()["error"]["message"]
    finally:
        components.close()
