"""The audit trail: each kind of admin action leaves a row (who, what, target, outcome),
secrets and message text stay out of it, and nothing in the API can change it."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.components import Components, build_components, open_database
from app.config_report import settings_hashes
from app.curation import datasets, examples
from app.llm.provision import small_chat_model
from app.main import create_app
from app.releases.errors import GateRefused, RegistryError
from app.releases.gate import Gate
from app.releases.registry import Registry
from app.security.keys import KeyStore
from app.store import audit, conversations
from app.store.db import Database
from app.store.models import ApiKey, AuditEvent, Conversation
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
    registry = Registry(db)
    entry = registry.add_model(small_chat_model(), name="small")
    registry.activate("small", actor="alice")
    with pytest.raises(RegistryError):
        registry.rollback(actor="alice")
    settings = make_settings(tmp_path)
    gate = Gate(settings.models, registry, never_measured, never_measured, never_measured)
    with pytest.raises(GateRefused):
        gate.activate("model", "small", actor="bob", evaluate=False)  # never evaluated
    with pytest.raises(RegistryError):
        gate.activate("adapter", "no-such-adapter", actor="carol", evaluate=False)
    with pytest.raises(RegistryError):
        gate.deactivate(actor="carol")
    # The registry only hashes an adapter's file; serving one is tested in tests/finetune.
    (tmp_path / "tone.gguf").write_bytes(b"adapter bytes for the registry")
    tone = registry.add_adapter(
        tmp_path / "tone.gguf",
        name="tone",
        base=entry,
        dataset_name="ds-1",
        dataset_sha256="0" * 64,
        hyperparameters={},
        training={},
    )
    gate.activate("adapter", "tone", actor="carol", evaluate=False, force=True)  # not measured
    registry.rollback(actor="dave")  # back to the base alone
    gate.activate("adapter", "tone", actor="carol", evaluate=False, force=True)
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
    # A rollback to a release with an adapter is a rollback, not an adapter activation
    # (it was recorded as adapter.activate before).
    assert registry.rollback(actor="frank").release == "small+tone"
    newest = trail(db)[0]
    assert (newest["action"], newest["actor"], newest["target"]) == (
        "model.rollback",
        "frank",
        "small+tone",
    )
    assert newest["detail"]["adapter"] == "tone"


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
    admin_id = next(k.id for k in components.guards.keys.list() if k.name == "audit-admin")
    assert (latest["action"], latest["target"], latest["actor"]) == (
        "key.revoke",
        "doomed",
        f"key:{admin_id}",  # typed: the key's id, never its (chosen) name
    )
    since = client.get(
        "/api/admin/audit", params={"since": "2999-01-01T00:00:00"}, headers=keys["admin"]
    )
    assert since.json() == []
    # Before issue #22's fix a 500: the year 10000 once converted to UTC.
    beyond = client.get(
        "/api/admin/audit",
        params={"since": "9999-12-31T23:59:59-23:59"},
        headers=keys["admin"],
    )
    assert beyond.status_code == 422, beyond.text
    assert beyond.json()["error"]["type"] == "invalid_request"
    assert "since" in beyond.json()["error"]["message"]


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
    # The trail and its CSV export: read only.
    assert audit_paths == {"/api/admin/audit": {"get"}, "/api/admin/audit.csv": {"get"}}


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
    # Before issue #22's fix: OverflowError tracebacks (the year 10000 in UTC; a span
    # longer than timedelta holds).
    for since, reason in (
        ("9999-12-31T23:59:59-23:59", "out of range once converted to UTC"),
        ("99999999999d", "too long a span"),
    ):
        refused = run_docchat("audit", "list", "--since", since, env=env)
        assert refused.returncode == 1, refused.stdout
        assert reason in refused.stderr
        assert "Traceback" not in refused.stderr


def test_postgresql_refuses_to_change_the_trail(postgres: PostgresServer) -> None:
    db = Database(postgres.new_database())
    db.migrate()
    audit.record_in(db, "cli", "key.create", "x")
    for statement in ("UPDATE audit_events SET outcome = 'failed'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(statement))
    assert len(trail(db)) == 1
    db.close()


# --- Every admin action is audited: the routes and the commands are walked, not listed ---

# Bodies that pass validation but start nothing: `{}` would start a real reindex.
QUIET_BODIES: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/api/admin/reindex"): {"action": "abort"},
}


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) of the app that needs the admin scope and changes state."""
    found = []
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or route.dependant is None:
            continue
        calls = [d.call for d in route.dependant.dependencies]
        if "admin" in {getattr(call, "required_scope", None) for call in calls}:
            found += [(m, route.path) for m in sorted(set(route.methods) - {"GET", "HEAD"})]
    return found


def newest_id(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.max(AuditEvent.id))) or 0


def events_after(db: Database, last: int) -> list[dict[str, Any]]:
    return [e for e in reversed(trail(db)) if e["id"] > last]


def test_every_admin_route_is_audited_with_its_outcome(
    admin_app: tuple[TestClient, Components, dict[str, dict[str, str]]],
) -> None:
    """Each state-changing admin route, called with the admin key (most of them refused:
    missing things, invalid bodies), leaves exactly one event with the typed actor.
    Before: POST /api/admin/reindex, POST /api/admin/examples (422), the purge's 422 and
    most refusals left nothing."""
    client, components, keys = admin_app
    routes = admin_routes(client.app)  # type: ignore[arg-type]
    assert ("POST", "/api/admin/reindex") in routes
    assert ("DELETE", "/api/admin/keys/{key_id}") in routes
    admin_id = next(k.id for k in components.guards.keys.list() if k.name == "audit-admin")
    for method, path in routes:
        url = re.sub(r"\{[^}]+\}", "no-such-thing", path)
        last = newest_id(components.db)
        body = QUIET_BODIES.get((method, path), {})
        response = client.request(method, url, headers=keys["admin"], json=body)
        assert response.status_code != 401, (method, path)
        new = events_after(components.db, last)
        assert len(new) == 1, (method, path, response.status_code, new)
        event = new[0]
        assert event["actor"] == f"key:{admin_id}", (method, path, event)
        expected = "ok" if response.status_code < 400 else "refused"
        if response.status_code >= 500:
            expected = "failed"
        assert event["outcome"] == expected, (method, path, response.status_code, event)
        if event["action"].startswith("api."):  # the generic event (no domain event)
            assert event["detail"]["route"] == f"{method} {path}"
    reindex = trail(components.db, "api.start_reindex")[0]
    assert (reindex["target"], reindex["detail"]["action"]) == (
        components.settings.vectors.collection,
        "abort",
    )
    # Reads are not recorded: a poll of a job would flood the trail.
    last = newest_id(components.db)
    assert client.get("/api/admin/reindex", headers=keys["admin"]).status_code == 200
    assert events_after(components.db, last) == []
    wait_for_reindex(client, keys["admin"])


def wait_for_reindex(client: TestClient, headers: dict[str, str]) -> None:
    """Let the walk's abort job end before the app closes (it drops nothing)."""
    for _ in range(200):
        job = client.get("/api/admin/reindex", headers=headers).json()["job"]
        if job["state"] not in ("starting", "running"):
            return
        time.sleep(0.05)


def test_domain_events_are_not_doubled_and_take_the_typed_actor(
    admin_app: tuple[TestClient, Components, dict[str, dict[str, str]]],
) -> None:
    """A revocation writes its own key.revoke (no generic event beside it), as the key's
    id, not its name; a refusal the domain wrote is not written twice either."""
    client, components, keys = admin_app
    admin_id = next(k.id for k in components.guards.keys.list() if k.name == "audit-admin")
    components.guards.keys.create("doomed-too", "chat")
    for expected in ("ok", "refused"):  # the second is already revoked
        last = newest_id(components.db)
        client.delete("/api/admin/keys/doomed-too", headers=keys["admin"])
        new = events_after(components.db, last)
        assert [(e["action"], e["outcome"], e["actor"]) for e in new] == [
            ("key.revoke", expected, f"key:{admin_id}")
        ]


# Harmless arguments for every command that is audited: most are refused (nothing by
# that name), the rest act on this test's own temporary data directory.
def cli_walk_args(tmp: Path) -> dict[str, list[str]]:
    return {
        "ingest": [str(tmp / "no-such-folder")],
        "reindex": ["--drop-previous"],
        "calibrate": ["--collection", "no-such-collection"],
        "keys.create": ["--name", "walk-key", "--scope", "chat"],
        "keys.revoke": ["walk-key"],
        "users.disable": ["no-such-person"],
        "users.enable": ["no-such-person"],
        "sources.add": ["walk-source", "website", "ftp://nope", "--collection", "walk"],
        "sources.schedule": ["no-such-source", "--every", "1h"],
        "sources.remove": ["no-such-source"],
        "sources.sync": ["no-such-source"],
        "models.add": [str(tmp / "no-such-model.gguf")],
        "models.pull": ["no-such-catalog-model"],
        "models.evaluate": ["no-such-model"],
        "models.activate": ["no-such-model"],
        "models.rollback": [],
        "curate.accept": ["no-such-message"],
        "curate.correct": ["no-such-message", "--answer", "Use pip."],
        "curate.add": [],
        "curate.drop": ["no-such-example"],
        "curate.refresh": ["no-such-example"],
        "curate.check": [],
        "finetune.train": ["--dataset", "no-such-dataset"],
        "finetune.evaluate": ["no-such-adapter"],
        "finetune.activate": ["no-such-adapter"],
        "finetune.deactivate": [],
        "dataset.build": ["walk-dataset"],
        "dataset.synth": ["walk-synth", "--collection", "no-such-collection"],
        "collections.create": ["walk-collection"],
        "collections.grant": ["walk-collection", "group", "walkers"],
        "collections.revoke": ["walk-collection", "group", "walkers"],
        "collections.delete": ["walk-collection"],  # refused without --yes
        "conversations.purge": ["--older-than", "30d", "--dry-run"],
        "conversations.delete": ["--conversation", "no-such-conversation"],
        "backup.create": ["--to", str(tmp / "backups"), "--without-models"],
        "backup.restore": [str(tmp / "no-such-snapshot")],
        "quarantine.release": ["999", "--reason", "walk"],
        "quarantine.drop": ["999", "--reason", "walk"],
    }


def leaf_commands() -> list[str]:
    """Every command of the `docchat` tree, dotted ("models.add"), walked from Click."""
    import typer.main

    from app.cli import app as cli_app

    def walk(command: Any, path: tuple[str, ...]) -> Iterator[str]:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            yield ".".join(path)
            return
        for name, sub in subcommands.items():
            yield from walk(sub, (*path, name))

    return list(walk(typer.main.get_command(cli_app), ()))


def test_every_admin_command_is_audited_with_its_outcome(tmp_path: Path) -> None:
    """Each command that is not a read (app/cli/audited.py READS), run for real, leaves
    exactly one event as cli:<OS user>. Before: `models add`, `reindex`, `finetune
    train`, `dataset build`'s refusals and more left nothing."""
    from app.cli.audited import READS

    data = tmp_path / "data"
    args = cli_walk_args(tmp_path)
    audited = [c for c in leaf_commands() if c not in READS]
    assert sorted(audited) == sorted(args), "a new command: add its harmless arguments here"
    env = {**os.environ, "DOCCHAT_DATA_DIR": str(data), "COLUMNS": "200"}
    db_settings = make_settings(data)
    for command in audited:
        db = open_database(db_settings)
        last = newest_id(db)
        db.close()
        done = run_docchat(*command.split("."), *args[command], env=env)
        assert "Traceback" not in done.stderr, (command, done.stderr)
        db = open_database(db_settings)
        # Not counted: what docchat writes on its own (the registry seeded on first use).
        new = [e for e in events_after(db, last) if e["actor"] not in audit.SYSTEM_ACTORS]
        db.close()
        assert len(new) == 1, (command, done.returncode, done.stderr[-500:], new)
        event = new[0]
        assert event["actor"].startswith("cli:"), (command, event)
        assert (event["outcome"] == "ok") == (done.returncode == 0), (command, event)
        if event["action"].startswith("cli."):
            assert event["action"] == f"cli.{command}"
    db = open_database(db_settings)
    added = trail(db, "cli.models.add")[0]
    reindexed = trail(db, "cli.reindex")[0]
    db.close()
    assert added["target"] == str(tmp_path / "no-such-model.gguf")
    assert added["outcome"] == "refused"
    assert added["reason"]  # the message the command printed
    assert reindexed["detail"]["options"] == ["drop_previous"]


def test_api_actors_are_key_ids_never_names(
    admin_app: tuple[TestClient, Components, dict[str, dict[str, str]]],
) -> None:
    """An admin key named `cli` (a valid name) acts as key:<id>. Before: its name went
    into the trail and `cli` became "cli:<the server's OS user>", the CLI's own actor."""
    client, components, _keys = admin_app
    key = components.guards.keys.create("cli", "admin")
    key_id = key.split("_")[1]
    last = newest_id(components.db)
    client.delete("/api/admin/keys/no-such-key", headers=bearer(key))
    client.post("/api/admin/purge", params={"older_than_days": 3650}, headers=bearer(key))
    actors = {e["actor"] for e in events_after(components.db, last)}
    assert actors == {f"key:{key_id}"}


def test_api_deletes_by_id_before_a_name_shaped_like_it(
    admin_app: tuple[TestClient, Components, dict[str, dict[str, str]]],
) -> None:
    """DELETE /api/admin/keys/<A's id> revokes A even where a key B is named like that
    id (stored directly, as an older docchat could have: names like ids are refused now),
    and the per-key conversations route resolves to A too. Before: it revoked B."""
    client, components, keys = admin_app
    components.guards.keys.create("key-a", "chat")
    a_id = next(k.id for k in components.guards.keys.list() if k.name == "key-a")
    with components.db.session() as session:
        session.add(ApiKey(id="c" * 12, name=a_id, scope="chat", key_hash="x" * 64))
        session.flush()
        kept = conversations.create(session, "B's question", owner="c" * 12).id
        conversations.create(session, "A's question", owner=a_id)
    gone = client.delete(f"/api/admin/keys/{a_id}/conversations", headers=keys["admin"])
    assert gone.status_code == 200, gone.text
    assert gone.json()["conversations"] == 1
    with components.db.session() as session:
        assert session.get(Conversation, kept) is not None  # B's stays
    assert client.delete(f"/api/admin/keys/{a_id}", headers=keys["admin"]).status_code == 200
    states = {k.id: k.state for k in components.guards.keys.list()}
    assert (states[a_id], states["c" * 12]) == ("revoked", "active")


def test_an_event_rolled_back_with_its_work_leaves_the_generic_one(db: Database) -> None:
    """The rule's edge: a domain event added to a transaction that then fails is gone
    with it, so the action still writes its generic event, as failed, and only that."""
    action = audit.AdminAction("cli.example", "cli:someone", "x")

    def fail_after_the_event() -> None:
        with db.session() as session:
            audit.record(session, "reviewer-name", "example.drop", "x")
            session.flush()
            raise RuntimeError("the work failed after the event was added")

    with audit.acting(action), pytest.raises(RuntimeError):
        fail_after_the_event()
    assert len(action.written) == 1
    assert not action.recorded_own()
    audit.finish(db, action, "failed", "RuntimeError")
    assert [(e["action"], e["actor"], e["outcome"]) for e in trail(db)] == [
        ("cli.example", "cli:someone", "failed")
    ]
    committed = audit.AdminAction("cli.example", "cli:someone", "y")
    with audit.acting(committed), db.session() as session:
        audit.record(session, "reviewer-name", "example.drop", "y")
    assert committed.recorded_own()
    audit.finish(db, committed, "ok")  # writes nothing: the domain's event stands
    newest = trail(db)[0]
    assert (newest["action"], newest["actor"]) == ("example.drop", "cli:someone")
