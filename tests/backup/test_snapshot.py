"""Snapshots on real stores without the models: a SQLite database migrated for real, an
embedded Chroma with a served collection behind a pointer, registry rows whose files lie
inside and outside the data directory, datasets, the lexical index and a secret."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from app.backup import signing, snapshot
from app.settings import Settings
from app.store import audit
from app.store.db import Database
from app.store.models import Adapter, AuditEvent, ChatModel, Conversation
from app.store.vectors import VectorStore
from common.files import file_sha256
from tests.conftest import make_settings, run_docchat

DIM = 8
KEY = "backup-signing-key-for-tests-0123456789abcdefghij"


def _settings(data_dir: Path, key: str | None = KEY, **overrides: Any) -> Settings:
    """A deployment whose backups are signed with `key` (the operator keeps it in the
    secret store, so a new machine has it too)."""
    backup = {"signing_key": key} if key else {}
    return make_settings(data_dir, backup=backup, **overrides)


def _populate(settings: Settings, outside: Path) -> dict[str, str]:
    """A deployment's worth of state; the sha256 of each registered file by name."""
    db = Database(settings.database_url)
    db.migrate()
    data = settings.data_dir
    (data / "datasets").mkdir(parents=True)
    (data / "datasets" / "support.jsonl").write_text('{"q": "a"}\n')
    (data / "lexical").mkdir()
    (data / "lexical" / "docs.idx").write_bytes(b"\x00\x01lexical")
    (data / "secrets").mkdir()
    (data / "secrets" / "key_pepper").write_text("s3cret-pepper")
    (data / "embedding-cache").mkdir()
    (data / "embedding-cache" / "model.onnx").write_bytes(b"cache")
    (data / "adapters").mkdir()
    adapter_file = data / "adapters" / "a1.gguf"
    adapter_file.write_bytes(b"GGUF adapter bytes")
    outside.mkdir()
    own_model = outside / "my-model.gguf"
    own_model.write_bytes(b"GGUF my own model" * 100)
    hashes = {"my-model": file_sha256(own_model), "a1": file_sha256(adapter_file)}
    with db.session() as session:
        session.add(Conversation(id="c" * 32, title="kept"))
        session.add(
            ChatModel(
                name="my-model",
                path=str(own_model),
                sha256=hashes["my-model"],
                size_bytes=own_model.stat().st_size,
            )
        )
        session.add(
            Adapter(
                name="a1",
                path=str(adapter_file),
                sha256=hashes["a1"],
                size_bytes=adapter_file.stat().st_size,
                base_name="my-model",
                base_sha256=hashes["my-model"],
                architecture="llama",
                dataset_name="support",
                dataset_sha256="0" * 64,
            )
        )
    db.close()
    store = VectorStore(url=None, path=settings.chroma_path, writer=True)
    rng = np.random.default_rng(7)
    ids = [f"chunk-{i}" for i in range(30)]
    store.create_as("docs--g1", {"hnsw:space": "cosine", "embedding_model": "m"}, {})
    from app.store.vectors import ExportPage

    store.add_records(
        "docs--g1",
        ExportPage(
            ids,
            rng.standard_normal((30, DIM)).astype(np.float32),
            [f"text {i}" for i in range(30)],
            [{"source": f"f{i % 3}.md", "ord": i} for i in range(30)],
        ),
    )
    store.set_pointer("docs", target="docs--g1", previous="", building="")
    store.close()
    return hashes


@pytest.fixture
def deployment(tmp_path: Path) -> tuple[Settings, dict[str, str]]:
    settings = _settings(tmp_path / "data")
    return settings, _populate(settings, tmp_path / "outside")


def _vectors(settings: Settings) -> dict[str, tuple[list[str], Any, list[dict[str, Any]]]]:
    store = VectorStore(url=settings.vectors.url, path=settings.chroma_path, writer=False)
    try:
        found = {}
        for name in store.collection_names():
            pages = list(store.export_pages(name))
            ids = [i for p in pages for i in p.ids]
            vectors = np.concatenate([p.embeddings for p in pages]) if pages else np.zeros((0, DIM))
            found[name] = (ids, vectors, [store.collection_settings(name)[0]])
        return found
    finally:
        store.close()


def test_snapshot_round_trip_into_a_new_data_directory(
    tmp_path: Path, deployment: tuple[Settings, dict[str, str]]
) -> None:
    settings, hashes = deployment
    before = _vectors(settings)
    taken = snapshot.create(settings, tmp_path / "backups")
    manifest = snapshot.verify(taken, settings)
    assert manifest.schema_revision == snapshot.code_revision()
    assert {c["name"] for c in manifest.vectors["collections"]} == {"docs--g1", "docs--pointer"}
    assert "files/datasets/support.jsonl" in manifest.files
    assert "files/lexical/docs.idx" in manifest.files
    assert "files/adapters/a1.gguf" in manifest.files
    assert "external/models/my-model/my-model.gguf" in manifest.files
    # Secrets and caches stay out; the secret is named as left out.
    assert not any("secrets" in rel or "embedding-cache" in rel for rel in manifest.files)
    assert any(line.startswith("secrets/") for line in manifest.left_out)
    assert b"s3cret-pepper" not in b"".join(p.read_bytes() for p in taken.rglob("*") if p.is_file())

    source = Database(settings.database_url)
    with source.session() as session:  # recorded once the snapshot is whole
        (recorded,) = audit.events(session, action="backup")
        assert (recorded.action, recorded.target, recorded.outcome) == (
            "backup.create",
            taken.name,
            "ok",
        )
    source.close()

    # A new machine: the old data dir and the model's folder are gone.
    shutil.rmtree(settings.data_dir)
    shutil.rmtree(tmp_path / "outside")
    fresh = _settings(tmp_path / "elsewhere" / "data")
    done = snapshot.restore(fresh, taken)
    assert done.records == 30
    assert done.missing == []
    after = _vectors(fresh)
    assert after.keys() == before.keys()
    for name, (ids, vectors, meta) in before.items():
        assert after[name][0] == ids
        # Chroma normalizes cosine vectors as it stores them: equal to the last bits.
        assert np.allclose(after[name][1], vectors, rtol=0, atol=1e-6)
        assert after[name][2] == meta
    assert (fresh.data_dir / "datasets" / "support.jsonl").read_text() == '{"q": "a"}\n'
    assert (fresh.data_dir / "lexical" / "docs.idx").read_bytes() == b"\x00\x01lexical"
    db = Database(fresh.database_url)
    try:
        with db.session() as session:
            assert session.get(Conversation, "c" * 32) is not None
            model = session.scalars(select(ChatModel)).one()
            adapter = session.scalars(select(Adapter)).one()
            # Paths point where the files now are, with the registered bytes.
            assert Path(model.path) == fresh.data_dir / "models" / "my-model.gguf"
            assert file_sha256(Path(model.path)) == hashes["my-model"]
            assert Path(adapter.path) == fresh.data_dir / "adapters" / "a1.gguf"
            assert file_sha256(Path(adapter.path)) == hashes["a1"]
            (restored,) = audit.events(session, action="backup")
            assert (restored.action, restored.target) == ("backup.restore", taken.name)
    finally:
        db.close()

    # The target is no longer empty: a second restore is refused, and --force replaces.
    with pytest.raises(snapshot.SnapshotRefused, match="not empty"):
        snapshot.restore(fresh, taken)
    again = snapshot.restore(fresh, taken, force=True)
    assert again.records == 30


def test_a_damaged_snapshot_is_refused_naming_the_file(
    tmp_path: Path, deployment: tuple[Settings, dict[str, str]]
) -> None:
    settings, _ = deployment
    taken = snapshot.create(settings, tmp_path / "backups")
    victim = taken / "vectors" / "docs--g1" / "embeddings.f32"
    data = bytearray(victim.read_bytes())
    data[100] ^= 0x01
    victim.write_bytes(bytes(data))
    named = re.escape("vectors/docs--g1/embeddings.f32")
    with pytest.raises(snapshot.SnapshotRefused, match=named):
        snapshot.verify(taken, settings)
    fresh = _settings(tmp_path / "fresh")
    with pytest.raises(snapshot.SnapshotRefused, match="damaged"):
        snapshot.restore(fresh, taken)
    # Nothing was written before the check.
    assert not (fresh.data_dir / "docchat.db").exists()


def test_a_snapshot_from_a_newer_schema_is_refused_naming_both_revisions(
    tmp_path: Path, deployment: tuple[Settings, dict[str, str]]
) -> None:
    settings, _ = deployment
    taken = snapshot.create(settings, tmp_path / "backups")
    manifest = json.loads((taken / "manifest.json").read_text())
    manifest["schema_revision"] = "0042"
    _rewrite_manifest(taken, manifest)  # as a newer docchat, holding the key, wrote it
    head = snapshot.code_revision()
    with pytest.raises(snapshot.SnapshotRefused, match=f"'0042'.*newest is '{head}'"):
        snapshot.restore(_settings(tmp_path / "fresh"), taken)


def test_an_older_snapshot_is_migrated_after_restore(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")
    db = Database(settings.database_url)
    from alembic import command

    from app.store.db import alembic_config

    command.upgrade(alembic_config(db.engine), "0007")
    db.close()
    taken = snapshot.create(settings, tmp_path / "backups")
    assert snapshot.read_manifest(taken).schema_revision == "0007"
    fresh = _settings(tmp_path / "fresh")
    done = snapshot.restore(fresh, taken)
    assert (done.migrated_from, done.migrated_to) == ("0007", snapshot.code_revision())
    db = Database(fresh.database_url)
    try:
        with db.session() as session:  # the audit table came with the migration
            assert session.scalars(select(AuditEvent.action)).all() == ["backup.restore"]
    finally:
        db.close()


def test_keep_deletes_the_oldest_snapshots(
    tmp_path: Path, deployment: tuple[Settings, dict[str, str]]
) -> None:
    settings, _ = deployment
    folder = tmp_path / "backups"
    taken = [snapshot.create(settings, folder) for _ in range(3)]
    (folder / "docchat-backup-19990101T000000Z.partial").mkdir()  # a killed one, fresh
    deleted = snapshot.prune(folder, 2)
    assert deleted == [taken[0]]
    assert snapshot.snapshots(folder) == taken[1:]


# -- a tampered manifest (issue #22): every path it names is confined ------------------


def _rewrite_manifest(taken: Path, data: dict[str, Any], key: str | None = KEY) -> None:
    """Write a changed manifest back, signed with `key` (None: unsigned). The tests of
    the path checks sign it with the deployment's own key, as an attacker who also
    holds the key would: the path checks must hold without the signature."""
    body = {k: v for k, v in data.items() if k != "signature"}
    if key is not None:
        body["signature"] = signing.sign(body, key.encode())
    (taken / "manifest.json").write_text(json.dumps(body))


def _entry(data: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(e for e in data[kind] if e["name"] == name)
    return entry


def _craft(case: str, taken: Path, data: dict[str, Any], outside: Path) -> None:
    """One kind of entry pointed out of the snapshot (read) or the data folder (write)."""
    secret = outside / "secret.gguf"
    if case == "model stored":  # read a file outside the snapshot into the data folder
        entry = _entry(data, "models", "my-model")
        entry["stored"] = os.path.relpath(secret, taken)
        shutil.rmtree(Path(entry["path"]).parent)  # a new machine: the copy is needed
    elif case == "adapter stored":  # a symlink inside the snapshot that points out
        link = taken / "external" / "adapters" / "a1" / "evil.gguf"
        link.parent.mkdir(parents=True)
        link.symlink_to(secret)
        _entry(data, "adapters", "a1")["stored"] = "external/adapters/a1/evil.gguf"
    elif case == "model path":  # write outside the data folder, from a hashed file
        entry = _entry(data, "models", "my-model")
        entry["path"] = f"{data['data_dir']}/../pwned/x.gguf"
    elif case == "file into secrets":  # plant a signing key for the next backups
        planted = taken / "files" / "secrets" / "backup_signing_key"
        planted.parent.mkdir(parents=True)
        planted.write_text("the attacker's key")
        facts = {"sha256": file_sha256(planted), "size": planted.stat().st_size}
        data["files"]["files/secrets/backup_signing_key"] = facts
    elif case == "model onto the database":  # overwrite what restore just put back
        _entry(data, "models", "my-model")["path"] = f"{data['data_dir']}/docchat.db"
    elif case == "catalog name":
        entry = _entry(data, "models", "my-model")
        entry["catalog"] = "../../pwned/x"
    elif case == "database file":
        rel = os.path.relpath(secret, taken)
        data["database"]["file"] = rel
        data["files"][rel] = {"sha256": file_sha256(secret), "size": secret.stat().st_size}
    elif case == "vectors":  # a collection folder outside the snapshot
        shutil.copytree(taken / "vectors" / "docs--g1", outside / "coll")
        info = data["vectors"]["collections"][0]
        info["name"] = os.path.relpath(outside / "coll", taken / "vectors")
    else:  # pragma: no cover
        raise AssertionError(case)


CASES = [
    "model stored",
    "adapter stored",
    "model path",
    "file into secrets",
    "model onto the database",
    "catalog name",
    "database file",
    "vectors",
]
REFUSED = r"outside|not one of|unknown|never restores"


@pytest.mark.parametrize("case", CASES)
def test_a_manifest_that_names_a_path_outside_is_refused_whole(
    tmp_path: Path, deployment: tuple[Settings, dict[str, str]], case: str
) -> None:
    """Before the fix the registry entries were never checked: verify said ok, and
    restore read the attacker's file from outside the snapshot (model/adapter stored,
    vectors) or wrote outside the data folder (model path)."""
    settings, _ = deployment
    taken = snapshot.create(settings, tmp_path / "backups")
    outside = tmp_path / "attacker"
    outside.mkdir()
    (outside / "secret.gguf").write_bytes(b"not yours to read")
    data = json.loads((taken / "manifest.json").read_text())
    _craft(case, taken, data, outside)
    _rewrite_manifest(taken, data)
    fresh = _settings(tmp_path / "fresh" / "data")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(snapshot.SnapshotRefused, match=REFUSED):
        snapshot.verify(taken, fresh)
    with pytest.raises(snapshot.SnapshotRefused, match=REFUSED):
        snapshot.restore(fresh, taken)
    # Nothing written anywhere: not the target, not beside it, not the attacker's folder.
    assert not (tmp_path / "fresh").exists()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (outside / "secret.gguf").read_bytes() == b"not yours to read"


# -- signed snapshots (issue #22) ---------------------------------------------------


def _drop_key_events(taken: Path) -> None:
    """The probe's tamper: delete every key.* audit row from the snapshot's database
    and put the file's new sha256 and size in the manifest, signature left as it was."""
    database = taken / snapshot.SQLITE_FILE
    conn = sqlite3.connect(database)
    with conn:
        assert conn.execute("DELETE FROM audit_events WHERE action LIKE 'key.%'").rowcount == 2
    conn.execute("VACUUM")
    conn.close()
    data = json.loads((taken / "manifest.json").read_text())
    facts = {"sha256": file_sha256(database), "size": database.stat().st_size}
    data["files"][snapshot.SQLITE_FILE] = facts
    (taken / "manifest.json").write_text(json.dumps(data, indent=2))


def test_a_snapshot_whose_audit_trail_was_edited_is_refused_by_its_signature(
    tmp_path: Path, deployment: tuple[Settings, dict[str, str]]
) -> None:
    """Before signing, deleting the key.* audit rows and fixing hash and size in the
    manifest passed verify and restore."""
    settings, _ = deployment
    db = Database(settings.database_url)
    audit.record_in(db, "cli", "key.create", "ops")
    audit.record_in(db, "cli", "key.revoke", "ops")
    db.close()
    taken = snapshot.create(settings, tmp_path / "backups")
    _drop_key_events(taken)
    fresh = _settings(tmp_path / "fresh" / "data")
    with pytest.raises(signing.Forged, match=r"signature .*does not match.*tampered"):
        snapshot.verify(taken, fresh)
    # Not even with --trust-unsigned: a held key shows the manifest was changed.
    with pytest.raises(signing.Forged, match="does not match"):
        snapshot.restore(fresh, taken, trust_unsigned=True)
    assert not (tmp_path / "fresh").exists()


def test_an_unsigned_or_foreign_snapshot_needs_its_key_or_trust_unsigned(
    tmp_path: Path, deployment: tuple[Settings, dict[str, str]]
) -> None:
    settings, _ = deployment
    taken = snapshot.create(settings, tmp_path / "backups")
    # A lost deployment: the new one has its own key. The old key, handed in, verifies.
    other = _settings(tmp_path / "other" / "data", key="another-deployments-key-0123456789abc")
    with pytest.raises(signing.Unverifiable, match=r"does not hold.*--signing-key-file"):
        snapshot.verify(taken, other)
    assert snapshot.verify(taken, other, extra_keys=[KEY.encode()]).name == taken.name
    assert snapshot.verify(taken, other, trust_unsigned=True).name == taken.name

    # A snapshot from before signing (format 1), or one whose signature was removed.
    data = json.loads((taken / "manifest.json").read_text())
    data["format"] = 1
    _rewrite_manifest(taken, data, key=None)
    with pytest.raises(signing.Unverifiable, match=r"format 1.*before snapshots were signed"):
        snapshot.verify(taken, settings)
    with pytest.raises(signing.Unverifiable, match="--trust-unsigned"):
        snapshot.restore(other, taken)
    assert not other.data_dir.exists()
    done = snapshot.restore(other, taken, trust_unsigned=True)
    assert "format 1" in str(done.unverified)
    db = Database(other.database_url)
    try:
        with db.session() as session:  # the trust is on the record
            (event,) = audit.events(session, action="backup")
            assert "--trust-unsigned" in str(event.reason)
    finally:
        db.close()


def test_a_rotated_key_still_verifies_the_snapshots_it_signed(
    tmp_path: Path, deployment: tuple[Settings, dict[str, str]]
) -> None:
    settings, _ = deployment
    old = snapshot.create(settings, tmp_path / "backups")
    new_key = "the-rotated-in-backup-signing-key-9876543210"
    rotated = make_settings(
        settings.data_dir, backup={"signing_key": new_key, "signing_key_previous": KEY}
    )
    assert snapshot.verify(old, rotated).name == old.name
    new = snapshot.create(rotated, tmp_path / "backups")
    manifest = json.loads((new / "manifest.json").read_text())
    assert manifest["signature"]["key_id"] == signing.key_id(new_key.encode())
    assert new_key not in (new / "manifest.json").read_text()
    # The old key alone does not verify what the new one signed.
    with pytest.raises(signing.Unverifiable, match="does not hold"):
        snapshot.verify(new, settings)


def test_outside_production_a_key_is_generated_owner_only_and_production_needs_one(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path / "data", key=None)
    Database(settings.database_url).migrate()
    taken = snapshot.create(settings, tmp_path / "backups")
    generated = settings.data_dir / "secrets" / "backup_signing_key"
    assert generated.stat().st_mode & 0o777 == 0o600
    key = generated.read_text().strip()
    assert not any(key.encode() in p.read_bytes() for p in taken.rglob("*") if p.is_file())
    assert snapshot.verify(taken, settings).name == taken.name

    production = _settings(tmp_path / "prod", key=None, env="production")
    Database(production.database_url).migrate()
    with pytest.raises(snapshot.BackupError, match=r"backup.signing_key is required in production"):
        snapshot.create(production, tmp_path / "prod-backups")
    assert not (tmp_path / "prod-backups").exists()
    assert not (production.data_dir / "secrets").exists()


def test_snapshot_files_are_owner_only(
    tmp_path: Path, deployment: tuple[Settings, dict[str, str]]
) -> None:
    """Before, they had the umask's modes (644/755): conversations and key hashes
    readable by every local user."""
    settings, _ = deployment
    taken = snapshot.create(settings, tmp_path / "backups")
    modes = {p.relative_to(taken).as_posix(): p.stat().st_mode & 0o777 for p in taken.rglob("*")}
    assert taken.stat().st_mode & 0o777 == 0o700
    assert {m for rel, m in modes.items() if (taken / rel).is_dir()} == {0o700}
    assert {m for rel, m in modes.items() if (taken / rel).is_file()} == {0o600}
    assert "external/models/my-model/my-model.gguf" in modes


def test_the_cli_takes_a_lost_deployments_key_from_a_file(
    tmp_path: Path, deployment: tuple[Settings, dict[str, str]]
) -> None:
    settings, _ = deployment
    taken = snapshot.create(settings, tmp_path / "backups")
    env = {
        **os.environ,
        "DOCCHAT_DATA_DIR": str(tmp_path / "new" / "data"),
        "DOCCHAT_SECRETS_DIR": str(tmp_path / "new" / "no-secrets"),
        "DOCCHAT_ENV": "test",
        "DOCCHAT_BACKUP__SIGNING_KEY": "the-new-deployments-own-key-0123456789abc",
        "COLUMNS": "200",
    }
    refused = run_docchat("backup", "verify", str(taken), env=env)
    assert refused.returncode == 1
    assert "does not hold" in refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    key_file = tmp_path / "old-key"
    key_file.write_text(KEY + "\n")
    ok = run_docchat("backup", "verify", str(taken), "--signing-key-file", str(key_file), env=env)
    assert ok.returncode == 0, ok.stderr
    assert f"signed with key {signing.key_id(KEY.encode())}" in ok.stdout
    trusted = run_docchat("backup", "verify", str(taken), "--trust-unsigned", env=env)
    assert trusted.returncode == 0, trusted.stderr
    assert "UNVERIFIED SNAPSHOT" in trusted.stderr
