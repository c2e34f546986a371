"""Snapshots on real stores without the models: a SQLite database migrated for real, an
embedded Chroma with a served collection behind a pointer, registry rows whose files lie
inside and outside the data directory, datasets, the lexical index and a secret."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from app.backup import snapshot
from app.backup.stores import file_sha256
from app.settings import Settings
from app.store import audit
from app.store.db import Database
from app.store.models import Adapter, AuditEvent, ChatModel, Conversation
from app.store.vectors import VectorStore
from tests.conftest import make_settings

DIM = 8


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
    settings = make_settings(tmp_path / "data")
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
    manifest = snapshot.verify(taken)
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
    fresh = make_settings(tmp_path / "elsewhere" / "data")
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
        snapshot.verify(taken)
    fresh = make_settings(tmp_path / "fresh")
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
    (taken / "manifest.json").write_text(json.dumps(manifest))
    head = snapshot.code_revision()
    with pytest.raises(snapshot.SnapshotRefused, match=f"'0042'.*newest is '{head}'"):
        snapshot.restore(make_settings(tmp_path / "fresh"), taken)


def test_an_older_snapshot_is_migrated_after_restore(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    db = Database(settings.database_url)
    from alembic import command

    from app.store.db import alembic_config

    command.upgrade(alembic_config(db.engine), "0007")
    db.close()
    taken = snapshot.create(settings, tmp_path / "backups")
    assert snapshot.read_manifest(taken).schema_revision == "0007"
    fresh = make_settings(tmp_path / "fresh")
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


def _rewrite_manifest(taken: Path, data: dict[str, Any]) -> None:
    """Write a crafted manifest back, as an attacker with write access to the backups
    would (the tests of the paths below re-sign it: they test the path checks)."""
    (taken / "manifest.json").write_text(json.dumps(data))


def _entry(data: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(e for e in data[kind] if e["name"] == name)
    return entry


def _craft(case: str, taken: Path, data: dict[str, Any], outside: Path) -> None:
    """One kind of entry pointed out of the snapshot (read) or the data folder (write)."""
    secret = outside / "secret.gguf"
    if case == "model stored":  # read a file outside the snapshot into the data folder
        entry = _entry(data, "models", "my-model")
        entry["stored"] = os.path.relpath(secret, taken)
    elif case == "adapter stored":  # a symlink inside the snapshot that points out
        link = taken / "external" / "adapters" / "a1" / "evil.gguf"
        link.parent.mkdir(parents=True)
        link.symlink_to(secret)
        _entry(data, "adapters", "a1")["stored"] = "external/adapters/a1/evil.gguf"
    elif case == "model path":  # write outside the data folder, from a hashed file
        entry = _entry(data, "models", "my-model")
        entry["path"] = f"{data['data_dir']}/../pwned/x.gguf"
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


CASES = ["model stored", "adapter stored", "model path", "catalog name", "database file", "vectors"]


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
    fresh = make_settings(tmp_path / "fresh" / "data")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(snapshot.SnapshotRefused, match="outside|not one of|unknown"):
        snapshot.verify(taken)
    with pytest.raises(snapshot.SnapshotRefused, match="outside|not one of|unknown"):
        snapshot.restore(fresh, taken)
    # Nothing written anywhere: not the target, not beside it, not the attacker's folder.
    assert not (tmp_path / "fresh").exists()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (outside / "secret.gguf").read_bytes() == b"not yours to read"
