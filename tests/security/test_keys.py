"""API keys: shown once, stored as an HMAC, scoped, expiring, revocable, rotatable."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from app.components import open_database
from app.security.keys import KeyStore
from app.security.secrets import pepper_file, resolve_pepper
from app.store import retention
from app.store.models import ApiKey
from tests.conftest import make_settings, run_docchat


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    db = open_database(make_settings(tmp_path / "data"))
    return KeyStore(db, b"pepper-one-" * 4)


def test_key_is_stored_only_as_a_keyed_hash(store: KeyStore, tmp_path: Path) -> None:
    key = store.create("bot", "chat")
    assert key.startswith("dck_")
    identity = store.authenticate(key)
    assert identity is not None
    assert (identity.name, identity.scope) == ("bot", "chat")
    store.db.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("docchat.db*"))
    assert key.encode() not in raw
    secret_part = key.rsplit("_", 1)[1] if key.count("_") == 2 else key[17:]
    assert secret_part.encode() not in raw


def test_wrong_expired_and_revoked_keys_are_refused(store: KeyStore) -> None:
    key = store.create("bot", "chat")
    assert store.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert store.authenticate("dck_000000000000_" + "x" * 43) is None
    assert store.authenticate("not a key") is None
    short = store.create("short-lived", "chat", expires_days=1 / 86400)  # one second
    assert store.authenticate(short) is not None
    time.sleep(1.1)
    assert store.authenticate(short) is None
    assert store.revoke("bot")
    assert store.authenticate(key) is None
    assert not store.revoke("bot")  # already revoked
    states = {k.name: k.state for k in store.list()}
    assert states == {"bot": "revoked", "short-lived": "expired"}


def test_scopes_nest(store: KeyStore) -> None:
    chat = store.authenticate(store.create("c", "chat"))
    admin = store.authenticate(store.create("a", "admin"))
    assert chat is not None
    assert admin is not None
    assert chat.allows("chat")
    assert not chat.allows("ingest")
    assert not chat.allows("admin")
    assert admin.allows("chat")
    assert admin.allows("ingest")
    with pytest.raises(ValueError, match="scope"):
        store.create("x", "root")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="already exists"):
        store.create("c", "chat")


def test_last_used_is_recorded(store: KeyStore) -> None:
    key = store.create("bot", "chat")
    assert store.list()[0].last_used_at is None
    store.authenticate(key)
    assert store.list()[0].last_used_at is not None


def test_pepper_rotation_keeps_keys_working(store: KeyStore) -> None:
    key = store.create("bot", "chat")
    rotated = KeyStore(store.db, b"pepper-two-" * 4, previous_pepper=b"pepper-one-" * 4)
    assert rotated.authenticate(key) is not None  # re-hashed with the new pepper
    only_new = KeyStore(store.db, b"pepper-two-" * 4)
    assert only_new.authenticate(key) is not None
    assert KeyStore(store.db, b"pepper-one-" * 4).authenticate(key) is None


def test_generated_pepper_file_is_private(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    first, _ = resolve_pepper(settings)
    second, _ = resolve_pepper(settings)
    assert first == second
    path = pepper_file(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_keys_commands(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DOCCHAT_DATA_DIR": str(tmp_path / "data"),
        "DOCCHAT_SECRETS_DIR": str(tmp_path / "none"),
        "COLUMNS": "200",
    }

    def docchat(*args: str) -> subprocess.CompletedProcess[str]:
        return run_docchat("keys", *args, env=env, timeout=120)

    created = docchat("create", "--name", "support", "--scope", "chat", "--expires", "30")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("dck_")
    assert "shown once" in created.stderr
    listed = docchat("list")
    assert "support" in listed.stdout
    assert "chat" in listed.stdout
    assert "active" in listed.stdout
    assert key not in listed.stdout + listed.stderr
    duplicate = docchat("create", "--name", "support", "--scope", "chat")
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    assert docchat("revoke", "support").returncode == 0
    assert "revoked" in docchat("list").stdout
    assert docchat("revoke", "support").returncode == 1


@pytest.mark.parametrize(
    "name",
    ["cli:root", "key:0123456789ab", "a b", "bot\n", "bot\x00", "", "-bot", "b" * 65, "ünï"],
)
def test_key_names_are_refused_unless_plain(store: KeyStore, name: str) -> None:
    """A name is full-matched against [A-Za-z0-9][A-Za-z0-9._-]{0,63}: no colon (a key
    named `cli:root` read as the CLI's actor in the trail before), no control characters,
    bounded. Before: every one of these was stored."""
    with pytest.raises(ValueError, match="name"):
        store.create(name, "admin")
    assert store.list() == []


def test_a_name_shaped_like_an_id_is_refused_and_ids_come_first(store: KeyStore) -> None:
    """Key B named exactly like key A's id: refused. A row an older docchat stored that
    way never shadows A: revoking by that string revokes A. Before: B was created, and
    `revoke(<A's id>)` took whichever row the database returned first."""
    store.create("alpha", "chat")
    a_id = store.list()[0].id
    with pytest.raises(ValueError, match="look like a key id"):
        store.create(a_id, "admin")
    with store.db.session() as session:  # as an older docchat could have stored it
        session.add(ApiKey(id="b" * 12, name=a_id, scope="admin", key_hash="x" * 64))
    assert store.revoke(a_id)
    states = {k.id: k.state for k in store.list()}
    assert states == {a_id: "revoked", "b" * 12: "active"}
    with store.db.session() as session:
        row, _ = retention.key_conversations(session, a_id)
        assert row.id == a_id


def test_cli_refuses_a_name_that_is_not_plain(tmp_path: Path) -> None:
    env = {**os.environ, "DOCCHAT_DATA_DIR": str(tmp_path)}
    done = run_docchat("keys", "create", "--name", "cli:root", "--scope", "admin", env=env)
    assert done.returncode == 1
    assert "a key's name is" in done.stderr
    assert "Traceback" not in done.stderr
    assert "dck_" not in done.stdout
