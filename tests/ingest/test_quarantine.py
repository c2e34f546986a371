"""Quarantined files: listed with why, released (indexed anyway, and left alone by the
next run) or dropped (an uploaded copy deleted), from the CLI and the admin API, each
recorded in the audit trail with who and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.components import build_components, open_database
from app.main import create_app
from app.store import audit
from app.store.models import Document, IngestRun
from ingest import quarantine
from tests.conftest import Models, bearer, make_settings, with_auth
from tests.ingest.test_pipeline import run
from tests.ingest.test_quality import page, prose, write
from tests.test_cli import docchat

ORIGINAL = page("Alpha", prose(1))
COPY = ORIGINAL + "\n<!-- the same text once loaded -->\n"


def _events(db, action: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return [audit.as_dict(e) for e in audit.events(session, action=action, limit=10)]


def test_release_indexes_the_copy_and_the_next_run_keeps_it(tmp_path: Path, models: Models) -> None:
    docs = write(
        tmp_path / "docs", {"a.md": ORIGINAL, "copy.md": COPY, "b.md": page("B", prose(2))}
    )
    settings = make_settings(tmp_path / "data")
    assert run(settings, models, docs).quarantined == 1
    uploads = settings.data_dir / "uploads"
    db = open_database(settings)
    try:
        (item,) = quarantine.quarantined(db, uploads)
        assert (item.collection, item.source, item.reason) == (
            "docs",
            "docs/copy.md",
            "exact duplicate of docs/a.md",
        )
        assert item.path == (docs / "copy.md").resolve()
        assert not item.uploaded
    finally:
        db.close()

    out = docchat(
        "quarantine", "release", str(item.finding), "--reason", "kept on purpose",
        data_dir=settings.data_dir, timeout=240,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "released docs/docs/copy.md" in out.stdout

    db = open_database(settings)
    try:
        assert quarantine.quarantined(db, uploads) == []
        with db.session() as session:
            doc = session.scalars(select(Document).where(Document.source == "docs/copy.md")).one()
            assert doc.status == "indexed"
            assert doc.n_chunks > 0
            last = session.scalars(select(IngestRun).order_by(IngestRun.id.desc())).first()
            assert last is not None
            assert last.new == 1
            assert last.quarantined == 0
            kept = [(f.check, f.severity, f.reason) for f in last.findings]
            assert ("duplicate", "warning", "released: exact duplicate of docs/a.md") in kept
        (event,) = _events(db, quarantine.RELEASE)
        assert event["actor"].startswith("cli:")  # type: ignore[union-attr]
        assert (event["target"], event["reason"]) == ("docs/docs/copy.md", "kept on purpose")
    finally:
        db.close()
    # The next run of the folder leaves both copies as they are.
    again = run(settings, models, docs)
    assert (again.unchanged, again.quarantined, again.new) == (3, 0, 0)
    # Released twice: it is no longer in quarantine.
    twice = docchat(
        "quarantine", "release", str(item.finding), "--reason", "again", data_dir=settings.data_dir
    )
    assert twice.returncode == 1
    assert "not a file in quarantine" in twice.stderr


@pytest.fixture
def server(tmp_path: Path, models: Models):  # type: ignore[no-untyped-def]
    docs = write(tmp_path / "docs", {"a.md": ORIGINAL})
    settings = with_auth(make_settings(tmp_path / "data"))
    run(settings, models, docs)
    components = build_components(settings, embedder=models.embedder, engine=models.engine)
    keys = {s: components.guards.keys.create(f"t-{s}", s) for s in ("chat", "admin")}  # type: ignore[arg-type]
    try:
        with TestClient(create_app(settings, components)) as client:
            yield client, keys, components
    finally:
        components.close()


def test_an_uploaded_copy_is_listed_and_dropping_deletes_it(server) -> None:  # type: ignore[no-untyped-def]
    client, keys, components = server
    admin, chat = bearer(keys["admin"]), bearer(keys["chat"])
    files = {"files": ("copy.md", COPY.encode(), "text/markdown")}
    up = client.post("/api/documents", headers=admin, files=files, data={"collection": "docs"})
    assert up.status_code == 200, up.text
    assert up.json()["outcomes"] == {"copy.md": "quarantined"}
    copy = components.settings.data_dir / "uploads" / "docs" / "copy.md"
    assert copy.is_file()  # a quarantined upload is kept, to be released or dropped

    assert client.get("/api/admin/quarantine", headers=chat).status_code == 403
    listed = client.get("/api/admin/quarantine", headers=admin).json()
    assert [(q["source"], q["uploaded"]) for q in listed] == [("copy.md", True)]
    finding = listed[0]["finding"]
    assert listed[0]["reason"].startswith("exact duplicate of ")

    refused = client.post(f"/api/admin/quarantine/{finding}/drop", headers=admin, json={})
    assert refused.status_code == 422  # no reason: nothing dropped
    assert copy.is_file()
    gone = client.post(
        f"/api/admin/quarantine/{finding}/drop", headers=admin, json={"reason": "old copy"}
    )
    assert gone.json() == {"finding": finding, "deleted": True}
    assert not copy.exists()
    assert client.get("/api/admin/quarantine", headers=admin).json() == []
    missing = client.post(
        f"/api/admin/quarantine/{finding}/release", headers=admin, json={"reason": "x"}
    )
    assert missing.status_code == 404
    (event,) = _events(components.db, quarantine.DROP)
    assert (event["target"], event["reason"], event["outcome"]) == (
        "docs/copy.md",
        "old copy",
        "ok",
    )
    assert event["detail"] == {
        "finding": finding,
        "run": listed[0]["run_id"],
        "collection": "docs",
        "deleted": True,
    }  # type: ignore[comparison-overlap]
    assert (
        json.loads(client.get("/api/admin/quarantine?collection=other", headers=admin).text) == []
    )
