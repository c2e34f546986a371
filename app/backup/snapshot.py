"""Snapshots of everything docchat owns: create, verify, restore, list, prune.

A snapshot is a folder `docchat-backup-<UTC time>` holding

    manifest.json            versions, schema revision, stores, registry, every file's hash
    database/docchat.sqlite3 (SQLite) or database/docchat.pgdump (PostgreSQL)
    vectors/<collection>/    collection.json, records.jsonl, embeddings.f32 per collection
    files/<path>             the data directory's own files (datasets, adapters, the
                             lexical index, uploads, models kept there), by relative path
    external/<kind>/<name>/  registered model and adapter files kept outside it

It is written as `<name>.partial` and renamed when whole, so a folder without that
suffix is complete. What is left out on purpose is listed in the manifest (`left_out`):
catalog model files (`docchat models pull` installs them again, checked by hash),
secrets, caches.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app import __version__
from app.backup import signing, stores
from app.backup.paths import PG_FILE, SQLITE_FILE, Plan, plan
from app.backup.stores import BackupError as BackupError
from app.backup.stores import SnapshotRefused as SnapshotRefused
from app.llm.catalog import CATALOG
from app.settings import Settings
from app.store import audit
from app.store.db import MIGRATIONS, Database
from app.store.models import Adapter, ChatModel
from app.store.vectors import VectorStore
from common.files import file_sha256

# 2: the manifest is signed (1: unsigned, restored only with trust_unsigned).
FORMAT = 2
MANIFEST = "manifest.json"
PREFIX = "docchat-backup-"
PARTIAL = ".partial"
# Top-level entries of the data directory that are not copied as files: the stores
# (taken through their own APIs), model files (the registry decides), secrets (kept
# apart on purpose) and caches (made again when needed).
NOT_FILES = ("models", "secrets", "embedding-cache", "chroma")
SKIP_SUFFIXES = (".partial", ".tmp", ".lock", "-journal", "-wal", "-shm")


class Progress(Protocol):
    """Where the steps report: a rich progress bar in the CLI, nothing in tests."""

    def stage(self, description: str, total: int | None) -> None:
        """A new step of `total` units (None: unknown)."""

    def advance(self, n: int) -> None:
        """`n` more units of the current step done."""


class Quiet:
    """Progress that reports nowhere."""

    def stage(self, description: str, total: int | None) -> None:
        """Nothing."""

    def advance(self, n: int) -> None:
        """Nothing."""


# -- the manifest --------------------------------------------------------------------


@dataclass
class Manifest:
    """What a snapshot holds; `files` maps each path in it to its sha256 and size."""

    name: str
    created_at: str
    docchat_version: str
    schema_revision: str | None
    database: dict[str, Any]
    vectors: dict[str, Any]
    data_dir: str
    models: list[dict[str, Any]] = field(default_factory=list)
    adapters: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    format: int = FORMAT
    signature: dict[str, Any] | None = None
    # The manifest as read, signature aside: the bytes its signature covers.
    body: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, as written to manifest.json (before its signature is added)."""
        return {
            "format": self.format,
            "name": self.name,
            "created_at": self.created_at,
            "docchat_version": self.docchat_version,
            "schema_revision": self.schema_revision,
            "database": self.database,
            "vectors": self.vectors,
            "data_dir": self.data_dir,
            "models": self.models,
            "adapters": self.adapters,
            "files": self.files,
            "left_out": self.left_out,
            "warnings": self.warnings,
        }

    @property
    def size_bytes(self) -> int:
        """All files of the snapshot together."""
        return sum(int(f["size"]) for f in self.files.values())

    def summary(self) -> dict[str, Any]:
        """The few facts `backup list` and `verify` print."""
        return {
            "name": self.name,
            "created_at": self.created_at,
            "docchat_version": self.docchat_version,
            "schema_revision": self.schema_revision,
            "database": self.database.get("kind"),
            "vectors": self.vectors.get("kind"),
            "collections": len(self.vectors.get("collections", [])),
            "records": sum(c["count"] for c in self.vectors.get("collections", [])),
            "models": len(self.models),
            "adapters": len(self.adapters),
            "files": len(self.files),
            "size_bytes": self.size_bytes,
        }


def read_manifest(snapshot: Path) -> Manifest:
    """The manifest of a snapshot folder, or SnapshotRefused saying what is wrong."""
    path = snapshot / MANIFEST
    if snapshot.name.endswith(PARTIAL):
        raise SnapshotRefused(f"{snapshot} is an unfinished snapshot (its backup did not end)")
    if not path.is_file():
        raise SnapshotRefused(f"{snapshot} is not a docchat snapshot: it has no {MANIFEST}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if int(data["format"]) > FORMAT:
            raise SnapshotRefused(
                f"{snapshot.name} was written in snapshot format {data['format']} by docchat "
                f"{data.get('docchat_version')}; this docchat ({__version__}) reads format "
                f"{FORMAT} and older: restore it with that docchat or newer"
            )
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        body = {k: v for k, v in data.items() if k != "signature"}
        fields = {k: data[k] for k in data if k in MANIFEST_FIELDS}
        fields["format"] = int(data["format"])
        return Manifest(**fields, signature=data.get("signature"), body=body)
    except SnapshotRefused:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotRefused(f"{snapshot.name}: {MANIFEST} is unreadable ({exc})") from None


MANIFEST_FIELDS = frozenset(Manifest.__dataclass_fields__) - {"signature", "body"}


def _script() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def code_revision() -> str:
    """The newest schema revision this code knows."""
    head = _script().get_current_head()
    if head is None:  # pragma: no cover - there are migrations
        raise BackupError("no migrations found")
    return head


def check_schema(manifest: Manifest) -> None:
    """Refuse a snapshot whose schema this code does not know (a newer docchat's)."""
    revision = manifest.schema_revision
    if revision is None:
        return
    try:
        _script().get_revision(revision)
    except CommandError:
        raise SnapshotRefused(
            f"{manifest.name} holds database schema revision {revision!r}, newer than this "
            f"docchat knows (its newest is {code_revision()!r}): the snapshot was taken by "
            f"docchat {manifest.docchat_version}; restore it with that version or newer"
        ) from None


@dataclass
class Checked:
    """A snapshot checked whole: its manifest, the only paths a restore may use, and
    who signed it (`unverified` says why no one could tell, when trust_unsigned let it
    through)."""

    manifest: Manifest
    plan: Plan
    key_id: str | None
    unverified: str | None


def _kept_out(settings: Settings) -> tuple[Path, ...]:
    """Where a restore never writes a file: secrets, caches, the stores' own files (the
    stores are restored through their own APIs)."""
    kept = [settings.data_dir / d for d in NOT_FILES if d != "models"]
    kept.append(settings.chroma_path)
    if make_url(settings.database_url).get_backend_name() == "sqlite":
        database = stores.sqlite_path(settings.database_url)
        kept += [database.with_name(database.name + s) for s in ("", *SKIP_SUFFIXES)]
    return tuple(kept)


def verify(
    snapshot: Path,
    settings: Settings,
    *,
    extra_keys: Sequence[bytes] = (),
    trust_unsigned: bool = False,
    progress: Progress | None = None,
) -> Manifest:
    """Check a snapshot whole (see `checked`); its manifest."""
    return checked(
        snapshot,
        settings,
        extra_keys=extra_keys,
        trust_unsigned=trust_unsigned,
        progress=progress,
    ).manifest


def checked(
    snapshot: Path,
    settings: Settings,
    *,
    extra_keys: Sequence[bytes] = (),
    trust_unsigned: bool = False,
    progress: Progress | None = None,
) -> Checked:
    """Check a snapshot whole, before anything is written: manifest, format, signature
    (by a key these settings hold, or `extra_keys`), schema revision, that every path
    it names stays inside the snapshot (reads) or the data directory (writes), then
    every file's size and sha256. SnapshotRefused names the first problem found.

    `trust_unsigned` lets through a snapshot whose signature cannot be checked here
    (none, or an unknown key), never one whose signature a held key shows is wrong."""
    progress = progress or Quiet()
    snapshot = snapshot.expanduser().resolve()
    manifest = read_manifest(snapshot)
    keys = signing.resolve(settings, signing=False, extra=extra_keys)
    key_id: str | None = None
    unverified: str | None = None
    try:
        if manifest.format < FORMAT and manifest.signature is None:
            raise signing.Unverifiable(
                f"{manifest.name} was written in snapshot format {manifest.format} by docchat "
                f"{manifest.docchat_version}, before snapshots were signed: nothing proves "
                "where it has been; restore it only if you know, with --trust-unsigned"
            )
        key_id = signing.check(manifest.name, manifest.body, manifest.signature, keys)
    except signing.Unverifiable as exc:
        if not trust_unsigned:
            raise
        unverified = str(exc)
    check_schema(manifest)
    steps = plan(snapshot, manifest, settings.data_dir, _kept_out(settings))
    progress.stage("verifying", manifest.size_bytes)
    for rel, facts in sorted(manifest.files.items()):
        path = snapshot / rel  # confined by plan()
        if not path.is_file():
            raise SnapshotRefused(f"{manifest.name}: {rel} is missing")
        size = path.stat().st_size
        if size != facts["size"]:
            raise SnapshotRefused(
                f"{manifest.name}: {rel} is {size} bytes, the manifest says {facts['size']}: "
                "the snapshot is damaged"
            )
        if file_sha256(path, progress.advance) != facts["sha256"]:
            raise SnapshotRefused(
                f"{manifest.name}: {rel} does not match its sha256 in the manifest: the "
                "snapshot is damaged"
            )
    for folder in steps.collections:  # restore creates the collection collection.json names
        try:
            info = json.loads((folder / "collection.json").read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            info = None
        if not isinstance(info, dict) or info.get("name") != folder.name:
            raise SnapshotRefused(
                f"{manifest.name}: vectors/{folder.name}/collection.json is unreadable or "
                "names another collection: the snapshot is damaged"
            )
    return Checked(manifest, steps, key_id, unverified)


# -- create --------------------------------------------------------------------------


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


# -- list and prune ------------------------------------------------------------------


def snapshots(folder: Path) -> list[Path]:
    """Complete snapshots in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = [
        p
        for p in folder.iterdir()
        if p.is_dir()
        and p.name.startswith(PREFIX)
        and not p.name.endswith(PARTIAL)
        and (p / MANIFEST).is_file()
    ]
    return sorted(found, key=lambda p: p.name)


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete the oldest complete snapshots beyond the newest `keep`; those deleted.
    Unfinished ones (`.partial`) older than a day are deleted too (a killed backup)."""
    if keep < 1:
        raise ValueError("keep at least one snapshot")
    found = snapshots(folder)
    doomed = found[: max(0, len(found) - keep)]
    now = datetime.now(UTC).timestamp()
    doomed += [p for p in folder.glob(PREFIX + "*" + PARTIAL) if now - p.stat().st_mtime > 86_400]
    for path in doomed:
        shutil.rmtree(path)
    return doomed


# -- restore -------------------------------------------------------------------------


@dataclass
class Restored:
    """What a restore did, for the CLI to report."""

    manifest: Manifest
    migrated_from: str | None
    migrated_to: str
    collections: int
    records: int
    files: int
    paths_rewritten: list[str] = field(default_factory=list)
    to_pull: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)  # catalog models installed again
    pull_failures: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unverified: str | None = None  # why its signature was not checked (--trust-unsigned)


def _target_problems(settings: Settings, steps: Plan, store: VectorStore) -> list[str]:
    """What the target already holds (a restore needs empty stores)."""
    problems = []
    url = settings.database_url
    if make_url(url).get_backend_name() == "sqlite":
        path = stores.sqlite_path(url)
        if stores.sqlite_has_tables(path):
            problems.append(f"the database {path} holds tables")
    elif tables := stores.sql_tables(url):
        problems.append(f"the PostgreSQL database holds {len(tables)} tables")
    if names := store.collection_names():
        problems.append(f"the vector store {store.location} holds {len(names)} collections")
    clashes = [target for target in steps.files.values() if target.exists()]
    if clashes:
        problems.append(
            f"the data directory holds {len(clashes)} files the snapshot has "
            f"(e.g. {clashes[0].relative_to(settings.data_dir)})"
        )
    return problems


def _check_database_kind(settings: Settings, manifest: Manifest) -> None:
    kind = make_url(settings.database_url).get_backend_name()
    if kind != manifest.database.get("kind"):
        raise SnapshotRefused(
            f"{manifest.name} holds a {manifest.database.get('kind')} database and this "
            f"docchat is set to {kind}: restore with the same kind of database (set "
            "database.url), then move the data with the tools of your choice"
        )


def restore(
    settings: Settings,
    snapshot: Path,
    *,
    force: bool = False,
    pull_models: bool = True,
    extra_keys: Sequence[bytes] = (),
    trust_unsigned: bool = False,
    actor: str = "cli",
    progress: Progress | None = None,
) -> Restored:
    """Put a snapshot back into empty stores (every path and hash checked first), migrate
    its schema to this code's, and point the registry at the files where they now are.

    `force` restores over stores that hold data: the database is replaced, every
    collection deleted first and the snapshot's files overwritten. `extra_keys` and
    `trust_unsigned`: see `checked`; a snapshot let through unverified says so in the
    audit trail."""
    progress = progress or Quiet()
    check = checked(
        snapshot,
        settings,
        extra_keys=extra_keys,
        trust_unsigned=trust_unsigned,
        progress=progress,
    )
    manifest, steps = check.manifest, check.plan
    _check_database_kind(settings, manifest)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The writer of an embedded store: refused (busy) while a server holds it.
    store = VectorStore(url=settings.vectors.url, path=settings.chroma_path, writer=True)
    try:
        problems = _target_problems(settings, steps, store)
        if problems and not force:
            raise SnapshotRefused(
                "the target is not empty: "
                + "; ".join(problems)
                + ". Restore into an empty data directory and empty stores, or pass --force "
                "to replace what they hold"
            )
        _put_database(settings, steps.database, manifest, clean=bool(problems), progress=progress)
        db = Database(settings.database_url)
        try:
            db.migrate()  # an older snapshot's schema, brought to this code's
            if problems:
                store.drop_everything()
            collections, records = _put_vectors(store, steps, manifest, progress)
            files = _put_files(steps, progress)
            result = Restored(
                manifest,
                manifest.schema_revision,
                code_revision(),
                collections,
                records,
                files,
                unverified=check.unverified,
            )
            _put_registered(steps, db, result, progress, pull_models)
            audit.record_in(
                db,
                actor,
                "backup.restore",
                manifest.name,
                reason=f"restored unverified (--trust-unsigned): {check.unverified}"
                if check.unverified
                else None,
                detail={
                    "created_at": manifest.created_at,
                    "schema_from": manifest.schema_revision,
                    "schema_to": result.migrated_to,
                    "forced": bool(problems),
                    "collections": collections,
                    "to_pull": result.to_pull,
                    "signed_by_key": check.key_id,
                    "trusted_unsigned": check.unverified,
                },
            )
        finally:
            db.close()
    finally:
        store.close()
    return result


def _put_database(
    settings: Settings, source: Path, manifest: Manifest, *, clean: bool, progress: Progress
) -> None:
    progress.stage("database", source.stat().st_size)
    if manifest.database["kind"] == "sqlite":
        target = stores.sqlite_path(settings.database_url)
        for side in ("-wal", "-shm", "-journal"):
            target.with_name(target.name + side).unlink(missing_ok=True)
        stores.copy_file(source, target, progress.advance)
    else:
        stores.pg_restore(settings.database_url, source, clean=clean)
        progress.advance(source.stat().st_size)


def _put_vectors(
    store: VectorStore, steps: Plan, manifest: Manifest, progress: Progress
) -> tuple[int, int]:
    collections = manifest.vectors.get("collections", [])
    progress.stage("vectors", sum(c["count"] for c in collections))
    records = 0
    for folder in steps.collections:
        records += stores.import_collection(store, folder, progress.advance)
    return len(steps.collections), records


def _put_files(steps: Plan, progress: Progress) -> int:
    progress.stage("files", sum(source.stat().st_size for source in steps.files))
    for source, target in steps.files.items():
        stores.copy_file(source, target, progress.advance)
    return len(steps.files)


def _holds(path: Path, sha256: str) -> bool:
    return path.is_file() and file_sha256(path) == sha256


def _put_registered(
    steps: Plan,
    db: Database,
    result: Restored,
    progress: Progress,
    pull_models: bool,
) -> None:
    """Place each registered file where the plan says (a copy only ever lands on its
    checked target, or the spare name beside it) and point the registry there."""
    homes: dict[tuple[str, str], Path] = {}
    progress.stage(
        "model and adapter files", sum(p.entry["size"] for p in steps.registered if p.stored)
    )
    for placed in steps.registered:
        entry, kind, home = placed.entry, placed.kind, placed.home
        if placed.stored and placed.target and placed.spare and not _holds(home, entry["sha256"]):
            if home.exists():  # another file by that name: keep it, and ours beside it
                home = placed.spare
            stores.copy_file(placed.stored, home, progress.advance)
        elif not home.is_file() and entry.get("catalog") and pull_models:
            # A catalog model is not in the snapshot: the catalog provisions the same
            # bytes again (checked by their hash), so the restored deployment answers.
            from app.llm.catalog import PullError, pull

            try:
                home = pull(CATALOG[entry["catalog"]], home.parent)
                result.pulled.append(entry["catalog"])
            except PullError as exc:  # the index unreachable, say: the data is restored
                result.pull_failures.append(f"{entry['catalog']}: {exc}")
        if not home.is_file():
            if entry.get("catalog"):
                result.to_pull.append(entry["catalog"])
            else:
                result.missing.append(f"{kind[:-1]} {entry['name']}: {home}")
        homes[(kind, entry["name"])] = home
    with db.session() as session:
        rows: list[ChatModel | Adapter] = [*session.scalars(select(ChatModel))]
        rows += session.scalars(select(Adapter))
        for row in rows:
            kind = "models" if isinstance(row, ChatModel) else "adapters"
            found = homes.get((kind, row.name))
            if found is not None and row.path != str(found):
                result.paths_rewritten.append(f"{kind[:-1]} {row.name}: {row.path} -> {found}")
                row.path = str(found)
