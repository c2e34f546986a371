"""The audit trail: each kind of admin action leaves a row (who, what, target, outcome),
secrets and message text stay out of it, and nothing in the API can change it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.components import Components, build_components, open_database
from app.config_report import settings_hashes
from app.curation import datasets, examples
from app.finetune.gate import AdapterPromotion
from app.llm.adapters import AdapterRegistry
from app.llm.promotion import GateRefused, Promotion
from app.llm.provision import small_chat_model
from app.llm.registry import ModelRegistry, RegistryError
from app.main import create_app
from app.security.keys import KeyStore
from app.store import audit, conversations
from app.store.db import Database
from app.store.models import AuditEvent
from tests.conftest import Models, bearer, make_settings, run_docchat, with_auth
from tests.servers import PostgresServer


def trail(db: Database, action: str | None = None) -> list[dict[str, Any]]:
    with db.session() as session:
        return [audit.as_dict(e) for e in audit.events(session, action=action, limit=1000)]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(make_settings(tmp_path))
    yield database
    database.close()


def test_keys_created_and_revoked_are_audited(db: Database) -> None:
    store = KeyStore(db, b"p" * 32)
    key = store.create("bot", "chat")
    with pytest.raises(ValueError, match="already exists"):
        store.create("bot", "chat", actor="ops")
    assert store.revoke("bot", actor="admin-key")
    assert not store.revoke("bot", actor="admin-key")
    events = trail(db, "key")
    assert [(e["action"], e["outcome"], e["target"]) for e in reversed(events)] == [
        ("key.create", "ok", "bot"),
        ("key.create", "refused", "bot"),
        ("key.revoke", "ok", "bot"),
        ("key.revoke", "refused", "bot"),
    ]
    created = events[-1]
    assert created["actor"].startswith("cli:")  # the CLI, with the OS user
    assert created["detail"]["scope"] == "chat"
    assert events[-2]["actor"] == "ops"
    assert events[0]["reason"] == "already revoked"
    assert key not in json.dumps(events)  # never the key


def never_measured(*args: object) -> dict[str, Any]:
    """The gate's measurement, which no activation here may reach: every one is made with
    evaluate=False (the audit trail is what is tested; tests/llm/test_models.py and
    tests/finetune measure real releases). Called, it fails the test."""
    raise AssertionError("an activation in the audit test measured a release")


def test_models_and_adapters_activated_rolled_back_and_refused(
    db: Database, tmp_path: Path
) -> None:
    """Each outcome of each release action: refused, and (activation, rollback, adapter
    activation and deactivation) done. Only `model.activate` was checked as a success
    before; with the audit record of the other successes removed, this test failed."""
    registry = ModelRegistry(db)
    entry = registry.add(small_chat_model(), name="small")
    registry.activate("small", actor="alice")
    with pytest.raises(RegistryError):
        registry.rollback(actor="alice")
    settings = make_settings(tmp_path)
    promotion = Promotion(settings, registry, never_measured)
    with pytest.raises(GateRefused):
        promotion.activate("small", actor="bob", evaluate=False)  # never evaluated
    adapters = AdapterRegistry(db)
    gate = AdapterPromotion(promotion, adapters, never_measured, never_measured)
    with pytest.raises(RegistryError):
        gate.activate("no-such-adapter", actor="carol", evaluate=False)
    with pytest.raises(RegistryError):
        gate.deactivate(actor="carol")
    # The registry only hashes an adapter's file; serving one is tested in tests/finetune.
    (tmp_path / "tone.gguf").write_bytes(b"adapter bytes for the registry")
    tone = adapters.add(
        tmp_path / "tone.gguf",
        name="tone",
        base=entry,
        dataset_name="ds-1",
        dataset_sha256="0" * 64,
        hyperparameters={},
        training={},
    )
    gate.activate("tone", actor="carol", evaluate=False, force=True)  # never evaluated
    registry.rollback(actor="dave")  # back to the base alone
    gate.activate("tone", actor="carol", evaluate=False, force=True)
    gate.deactivate(actor="erin")
    seen = [(e["action"], e["outcome"], e["actor"], e["target"]) for e in reversed(trail(db))]
    assert seen == [
        ("model.activate", "ok", "alice", "small"),
        ("model.rollback", "refused", "alice", ""),
        ("model.activate", "refused", "bob", "small"),
        ("adapter.activate", "refused", "carol", "no-such-adapter"),
        ("adapter.deactivate", "refused", "carol", ""),
        ("adapter.activate", "ok", "carol", "small+tone"),
        ("model.rollback", "ok", "dave", "small"),
        ("adapter.activate", "ok", "carol", "small+tone"),
        ("adapter.deactivate", "ok", "erin", "small"),
    ]
    ok = trail(db, "model.activate")[-1]
    assert ok["detail"]["sha256"] == entry.sha256
    assert "evaluated" in (trail(db, "model.activate")[0]["reason"] or "")
    activated = trail(db, "adapter.activate")[0]["detail"]
    assert (activated["adapter"], activated["adapter_sha256"]) == ("tone", tone.sha256)
    assert activated["forced"] is True
    assert "not been evaluated" in activated["note"]
    rolled_back = trail(db, "model.rollback")[0]["detail"]
    assert (rolled_back["model"], rolled_back["adapter"]) == ("small", None)
    removed = trail(db, "adapter.deactivate")[0]["detail"]
    assert (removed["model"], removed["adapter"], removed["forced"]) == ("small", None, False)
    active = registry.active()
    assert active is not None
    assert (active.name, active.adapter) == ("small", None)


def test_curation_actions_are_audited(db: Database, tmp_path: Path) -> None:
    with db.session() as session:
        conversation = conversations.create(session, "How do I install it?")
        conversations.add_message(session, conversation.id, "user", content="How do I install it?")
        first = conversations.add_message(
            session, conversation.id, "assistant", content="Run the installer."
        )
        second = conversations.add_message(session, conversation.id, "assistant", content="Hm.")
        ids = first.id, second.id
    with db.session() as session:
        accepted, _ = examples.from_message(
            session, ids[0], reviewer="rita", default_collection="docs"
        )
        corrected, _ = examples.from_message(
            session, ids[1], reviewer="", default_collection="docs", answer="Use pip."
        )
        datasets.build(session, tmp_path, "ds-1", held_out=0.0, created_by="rita")
        examples.drop(session, corrected.id, reviewer="cli")
    seen = [(e["action"], e["actor"], e["target"]) for e in reversed(trail(db))]
    assert seen[0] == ("example.accept", "rita", accepted.id)
    assert seen[1] == ("example.correct", "anonymous", corrected.id)
    assert seen[2] == ("dataset.build", "rita", "ds-1")
    assert seen[3][0:1] == ("example.drop",)
    assert seen[3][1].startswith("cli:")
    build = trail(db, "dataset.build")[0]
    assert build["detail"]["examples"] == 2
    # Never the text of a question or an answer.
    assert "installer" not in json.dumps(trail(db))


def test_settings_changed_at_start_names_keys_never_secret_values(
    db: Database, tmp_path: Path
) -> None:
    pepper = "a-very-secret-pepper-value-of-some-length-0123"
    first = make_settings(tmp_path, security={"key_pepper": pepper})
    assert not any(k.startswith("security.key_pepper") for k in settings_hashes(first))
    event = audit.record_settings(db, settings_hashes(first))
    assert event is not None
    assert event.detail["first"]
    assert audit.record_settings(db, settings_hashes(first)) is None  # nothing changed
    changed = make_settings(tmp_path, rag={"top_k": 7}, security={"key_pepper": pepper + "x"})
    event = audit.record_settings(db, settings_hashes(changed))
    assert event is not None
    assert event.detail["changed"] == ["rag.top_k"]  # the pepper is not compared at all
    assert pepper not in json.dumps(trail(db))


def test_server_start_records_changed_settings(tmp_path: Path, models: Models) -> None:
    for top_k in (4, 4, 6):
        settings = make_settings(tmp_path, rag={"top_k": top_k})
        components = build_components(
            settings, writer=False, embedder=models.embedder, engine=models.engine
        )
        try:
            with TestClient(create_app(settings, components)):
                pass
        finally:
            components.close()
    db = open_database(make_settings(tmp_path))
    events = trail(db, audit.SETTINGS_ACTION)
    db.close()
    assert len(events) == 2  # the first start, and the one that changed something
    assert events[0]["detail"]["changed"] == ["rag.top_k"]
    assert events[0]["actor"] == "server"


@pytest.fixture(scope="module")
def admin_app(
    tmp_path_factory: pytest.TempPathFactory, models: Models
) -> Iterator[tuple[TestClient, Components, dict[str, dict[str, str]]]]:
    settings = make_settings(tmp_path_factory.mktemp("audit-api"))
    components = build_components(
        settings, writer=False, embedder=models.embedder, engine=models.engine
    )
    keys = {
        scope: bearer(components.guards.keys.create(f"audit-{scope}", scope))
        for scope in ("chat", "admin")
    }
    try:
        with TestClient(create_app(with_auth(settings), components)) as client:
            yield client, components, keys
    finally:
        components.close()


def test_admin_api_lists_the_trail_and_revocations_name_the_key(
    admin_app: tuple[TestClient, Components, dict[str, dict[str, str]]],
) -> None:
    client, components, keys = admin_app
    components.guards.keys.create("doomed", "chat")
    assert client.delete("/api/admin/keys/doomed", headers=keys["admin"]).status_code == 200
    assert client.get("/api/admin/audit").status_code == 401
    assert client.get("/api/admin/audit", headers=keys["chat"]).status_code == 403
    listed = client.get("/api/admin/audit", params={"action": "key"}, headers=keys["admin"])
    assert listed.status_code == 200, listed.text
    latest = listed.json()[0]
    assert (latest["action"], latest["target"], latest["actor"]) == (
        "key.revoke",
        "doomed",
        "audit-admin",
    )
    since = client.get(
        "/api/admin/audit", params={"since": "2999-01-01T00:00:00"}, headers=keys["admin"]
    )
    assert since.json() == []


def test_no_route_edits_the_trail(
    admin_app: tuple[TestClient, Components, dict[str, dict[str, str]]],
) -> None:
    client, components, keys = admin_app
    with components.db.session() as session:
        first = session.scalars(select(AuditEvent.id)).first()
    assert first is not None
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        for path in ("/api/admin/audit", f"/api/admin/audit/{first}"):
            response = client.request(method, path, headers=keys["admin"], json={})
            assert response.status_code in (404, 405), (method, path)
    spec = create_app(components.settings, components).openapi()
    audit_paths = {p: set(ops) for p, ops in spec["paths"].items() if "audit" in p}
    assert audit_paths == {"/api/admin/audit": {"get"}}


def test_cli_audit_list(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    db = open_database(settings)
    KeyStore(db, b"p" * 32).create("cli-made", "chat")
    db.close()
    env = {**os.environ, "DOCCHAT_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    listed = run_docchat("audit", "list", "--action", "key", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert rows[0]["action"] == "key.create"
    assert rows[0]["target"] == "cli-made"
    table = run_docchat("audit", "list", "--since", "1d", env=env)
    assert table.returncode == 0
    assert "key.create" in table.stdout
    bad = run_docchat("audit", "list", "--since", "yesterday", env=env)
    assert bad.returncode == 1
    assert "neither a span" in bad.stderr


def test_postgresql_refuses_to_change_the_trail(postgres: PostgresServer) -> None:
    db = Database(postgres.new_database())
    db.migrate()
    audit.record_in(db, "cli", "key.create", "x")
    for statement in ("UPDATE audit_events SET outcome = 'failed'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(statement))
    assert len(trail(db)) == 1
    db.close()
