"""Taking a snapshot: the database, the vectors, the data directory's files and the
registered model and adapter files, written under `.partial` and signed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url

from app import __version__
from app.backup import signing, stores
from app.backup.manifest import MANIFEST, NOT_FILES, PARTIAL, PREFIX, SKIP_SUFFIXES, Manifest
from app.backup.paths import PG_FILE, SQLITE_FILE
from app.backup.progress import Progress, Quiet
from app.backup.stores import BackupError
from app.llm.catalog import CATALOG
from app.settings import Settings
from app.store import audit
from app.store.db import Database
from app.store.models import Adapter, ChatModel
from app.store.vectors import VectorStore
from common.files import file_sha256


def _new_name(folder: Path) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name, n = PREFIX + stamp, 1
    while (folder / name).exists() or (folder / (name + PARTIAL)).exists():
        n += 1
        name = f"{PREFIX}{stamp}-{n}"
    return name


@dataclass
class _Writer:
    """Files going into a snapshot folder, each hashed as it is written."""

    root: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, rel: str, sha256: str, size: int) -> None:
        self.files[rel] = {"sha256": sha256, "size": size}

    def hash_in_place(self, rel: str) -> None:
        path = self.root / rel
        self.add(rel, file_sha256(path), path.stat().st_size)

    def copy(self, source: Path, rel: str, advance: stores.Advance) -> tuple[str, int]:
        sha256, size = stores.copy_file(source, self.root / rel, advance)
        self.add(rel, sha256, size)
        return sha256, size


def _data_files(settings: Settings, skip: list[Path]) -> list[Path]:
    """The data directory's own files, as copied into `files/`."""
    root = settings.data_dir
    if not root.is_dir():
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d not in NOT_FILES]
        dirnames[:] = [d for d in dirnames if not any((here / d) == s for s in skip)]
        for name in filenames:
            path = here / name
            if name.endswith(SKIP_SUFFIXES) or any(path == s for s in skip):
                continue
            found.append(path)
    return sorted(found)


def _registered_files(db: Database) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    with db.session() as session:
        models = [
            {"name": m.name, "path": m.path, "sha256": m.sha256, "size": m.size_bytes}
            for m in session.scalars(select(ChatModel).order_by(ChatModel.added_at))
        ]
        adapters = [
            {"name": a.name, "path": a.path, "sha256": a.sha256, "size": a.size_bytes}
            for a in session.scalars(select(Adapter).order_by(Adapter.created_at))
        ]
    return models, adapters


def create(
    settings: Settings,
    to: Path,
    *,
    with_models: bool = True,
    actor: str = "cli",
    progress: Progress | None = None,
) -> Path:
    """Take a snapshot into a new folder under `to`; its path. Safe while the server
    runs: the database through its online backup, the vectors from a consistent copy
    (embedded) or through the server, files copied whole."""
    progress = progress or Quiet()
    keys = signing.resolve(settings, signing=True)  # before anything: none in production
    assert keys.signing is not None
    to = to.expanduser().resolve()
    to.mkdir(parents=True, exist_ok=True)
    name = _new_name(to)
    work = to / (name + PARTIAL)
    # Owner-only from the start: it holds conversations and API-key hashes.
    work.mkdir(mode=0o700)
    work.chmod(0o700)
    out = _Writer(work)
    warnings: list[str] = []
    left_out: list[str] = []
    try:
        database, revision = _take_database(settings, out, progress)
        vectors = _take_vectors(settings, out, progress, warnings)
        db = Database(settings.database_url)
        try:
            models, adapters = _registered_files(db)
        finally:
            db.close()
        skip = [to, settings.chroma_path]
        if database["kind"] == "sqlite":
            skip.append(stores.sqlite_path(settings.database_url))
        registered = _take_registered(
            settings, out, progress, models, adapters, with_models, left_out, warnings
        )
        skip += registered
        files = _data_files(settings, skip)
        progress.stage("files", sum(p.stat().st_size for p in files))
        for path in files:
            rel = path.relative_to(settings.data_dir).as_posix()
            out.copy(path, f"files/{rel}", progress.advance)
        if (settings.data_dir / "secrets").is_dir():
            left_out.append(
                "secrets/ of the data directory (the generated key pepper and backup signing "
                "key): secrets, kept out of snapshots; keep them yourself, or API keys will "
                "not match and this deployment's snapshots will not verify after a restore"
            )
        manifest = Manifest(
            name=name,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            docchat_version=__version__,
            schema_revision=revision,
            database=database,
            vectors=vectors,
            data_dir=str(settings.data_dir),
            models=models,
            adapters=adapters,
            files=out.files,
            left_out=left_out,
            warnings=warnings,
        )
        body = manifest.as_dict()
        signed = {**body, "signature": signing.sign(body, keys.signing)}
        (work / MANIFEST).write_text(json.dumps(signed, indent=2) + "\n")
        _owner_only(work)
        final = to / name
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        _audit(settings, actor, "backup.create", name, "failed", None)
        raise
    _audit(
        settings,
        actor,
        "backup.create",
        name,
        "ok",
        {
            "schema_revision": revision,
            "collections": len(vectors["collections"]),
            "files": len(out.files),
            "size_bytes": manifest.size_bytes,
        },
    )
    return final


def _owner_only(root: Path) -> None:
    """Files 600, folders 700, whatever the umask made them."""
    for dirpath, _dirnames, filenames in os.walk(root):
        Path(dirpath).chmod(0o700)
        for name in filenames:
            (Path(dirpath) / name).chmod(0o600)


def _take_database(
    settings: Settings, out: _Writer, progress: Progress
) -> tuple[dict[str, Any], str | None]:
    url = settings.database_url
    kind = make_url(url).get_backend_name()
    if kind == "sqlite":
        source = stores.sqlite_path(url)
        if not source.exists():
            raise BackupError(f"there is no database at {source}: nothing to back up")
        progress.stage("database", stores.sqlite_pages(source))
        stores.sqlite_backup(source, out.root / SQLITE_FILE, progress.advance)
        out.hash_in_place(SQLITE_FILE)
        return {"kind": "sqlite", "file": SQLITE_FILE}, stores.sqlite_revision(
            out.root / SQLITE_FILE
        )
    if kind == "postgresql":
        progress.stage("database (pg_dump)", None)
        revision = stores.sql_revision(url)
        stores.pg_dump(url, out.root / PG_FILE)
        out.hash_in_place(PG_FILE)
        return {"kind": "postgresql", "file": PG_FILE}, revision
    raise BackupError(f"backing up a {kind} database is not supported (SQLite or PostgreSQL)")


def _take_vectors(
    settings: Settings, out: _Writer, progress: Progress, warnings: list[str]
) -> dict[str, Any]:
    url = settings.vectors.url
    scratch: Path | None = None
    if url:
        store = VectorStore(url=url, path=settings.chroma_path, writer=False)
    else:
        progress.stage("vector store (copying)", None)
        scratch = Path(tempfile.mkdtemp(prefix="chroma-", dir=out.root))
        stores.copy_embedded_chroma(settings.chroma_path, scratch / "chroma")
        store = VectorStore(url=None, path=scratch / "chroma", writer=True)
    collections = []
    try:
        names = store.collection_names()
        progress.stage("vectors", sum(store.collection_count(n) for n in names))
        for name in names:
            dump = stores.export_collection(
                store, name, out.root / "vectors" / name, progress.advance
            )
            for path in dump.files:
                out.hash_in_place(path.relative_to(out.root).as_posix())
            collections.append({"name": name, "count": dump.count, "dimension": dump.dimension})
            if dump.changed:
                warnings.append(
                    f"collection {name} changed while it was exported (an ingest ran): "
                    "its export may mix before and after; take another snapshot after it"
                )
    finally:
        store.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return {"kind": "server" if url else "embedded", "collections": collections}


def _kind_of(entry: dict[str, Any]) -> str | None:
    return next((m.name for m in CATALOG.values() if m.sha256 == entry["sha256"]), None)


def _take_registered(
    settings: Settings,
    out: _Writer,
    progress: Progress,
    models: list[dict[str, Any]],
    adapters: list[dict[str, Any]],
    with_models: bool,
    left_out: list[str],
    warnings: list[str],
) -> list[Path]:
    """Copy registered model and adapter files (catalog models only by name and hash);
    fills each entry's `stored` (its path in the snapshot, or None). The files taken."""
    taken: list[Path] = []
    todo: list[tuple[str, dict[str, Any], Path]] = []
    for kind, entries in (("models", models), ("adapters", adapters)):
        for entry in entries:
            path = Path(entry["path"])
            entry["stored"] = None
            entry["catalog"] = _kind_of(entry) if kind == "models" else None
            if entry["catalog"]:
                left_out.append(
                    f"model {entry['name']}: catalog model {entry['catalog']}, not copied "
                    f"(docchat models pull {entry['catalog']} installs it, checked by hash)"
                )
            elif kind == "models" and not with_models:
                left_out.append(f"model {entry['name']}: {path} (--without-models)")
            elif not path.is_file():
                warnings.append(f"{kind[:-1]} {entry['name']}: its file {path} is missing")
            else:
                todo.append((kind, entry, path))
            if path.is_relative_to(settings.data_dir):
                taken.append(path)  # never twice, nor as a plain file
    progress.stage("model and adapter files", sum(p.stat().st_size for _, _, p in todo))
    for kind, entry, path in todo:
        if path.is_relative_to(settings.data_dir):
            rel = "files/" + path.relative_to(settings.data_dir).as_posix()
        else:
            rel = f"external/{kind}/{entry['name']}/{path.name}"
        sha256, _size = out.copy(path, rel, progress.advance)
        entry["stored"] = rel
        if sha256 != entry["sha256"]:
            warnings.append(
                f"{kind[:-1]} {entry['name']}: {path} no longer matches its registered hash; "
                "copied as it is (docchat will refuse to load it)"
            )
    return taken


def _audit(
    settings: Settings,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    detail: dict[str, Any] | None,
) -> None:
    url = settings.database_url
    if make_url(url).get_backend_name() == "sqlite" and not stores.sqlite_path(url).exists():
        return  # no database to write to (and none to create)
    db = Database(url)
    try:
        audit.record_in(db, actor, action, target, outcome, detail=detail)
    finally:
        db.close()
