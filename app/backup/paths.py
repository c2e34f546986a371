"""Where each path a snapshot's manifest names may point: checked once, up front.

A manifest is input: whoever can write to the backups can write it. Every path in it
(the hashed files, the database file, the collection folders, each registered model's
and adapter's stored copy, its registry path and so where restore puts it) goes through
one function, `confined`, before anything is written: what is read must lie inside the
snapshot, what is written inside the target data directory, symlinks followed. Restore
then uses only the paths of the `Plan` built here, so it cannot reach a path that was
not checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from app.backup.stores import SnapshotRefused
from app.llm.catalog import CATALOG
from common.files import file_sha256

if TYPE_CHECKING:
    from app.backup.manifest import Manifest

SQLITE_FILE = "database/docchat.sqlite3"
PG_FILE = "database/docchat.pgdump"
DATABASE_FILES = {"sqlite": SQLITE_FILE, "postgresql": PG_FILE}
# The folders of a snapshot; a hashed file anywhere else is not one docchat writes.
PARTS = ("database/", "vectors/", "files/", "external/")
COLLECTION_FILES = ("collection.json", "records.jsonl", "embeddings.f32")
REGISTERED = ("models", "adapters")
SHA256 = re.compile(r"[0-9a-f]{64}")


def confined(
    root: Path, rel: object, what: str, name: str, keep_out: tuple[Path, ...] = ()
) -> Path:
    """`root / rel`, or SnapshotRefused unless `rel` is a plain relative path (not
    absolute, no `..`, `.` or empty parts) that also resolves, symlinks followed,
    inside `root` and inside none of `keep_out`. The one check for every path a
    manifest names: `root` is the snapshot for what is read, the target data directory
    for what is written (keeping out of the places a snapshot never restores)."""
    where = "the snapshot" if what.startswith("snapshot") else "the data directory"
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        raise SnapshotRefused(f"{name}: the manifest names no valid path for {what}: {rel!r}")
    if PurePosixPath(rel).is_absolute() or any(p in ("", ".", "..") for p in rel.split("/")):
        raise SnapshotRefused(
            f"{name}: the manifest's {what} {rel!r} points outside {where}: the manifest "
            "is damaged or was tampered with; nothing was restored"
        )
    path = root / rel
    if not path.resolve().is_relative_to(root.resolve()):
        raise SnapshotRefused(
            f"{name}: the manifest's {what} {rel!r} leads outside {where} (a symbolic "
            "link): the snapshot is damaged or was tampered with; nothing was restored"
        )
    if any(path.resolve().is_relative_to(kept.resolve()) for kept in keep_out):
        raise SnapshotRefused(
            f"{name}: the manifest's {what} {rel!r} lies in a part of the data directory a "
            "snapshot never restores (secrets, caches, the stores' own files): the "
            "manifest was tampered with; nothing was restored"
        )
    return path


@dataclass
class Placement:
    """A registered model or adapter file: where its copy is read and where it goes."""

    kind: str  # models or adapters
    entry: dict[str, Any]
    stored: Path | None  # its copy in the snapshot (None: not copied)
    target: Path | None  # where it is written in the data directory (None: kept as is)
    spare: Path | None  # beside target, when another file already holds that name
    home: Path  # where the registry points after restore, when nothing else is found


@dataclass
class Plan:
    """Every path a restore reads or writes, each one checked."""

    database: Path
    collections: list[Path]
    files: dict[Path, Path]  # the snapshot's copy -> its place in the data directory
    registered: list[Placement]


def plan(
    snapshot: Path, manifest: Manifest, data_dir: Path, keep_out: tuple[Path, ...] = ()
) -> Plan:
    """Check every path `manifest` names against `snapshot` (reads) and `data_dir`
    (writes, never into `keep_out`: secrets, caches, the stores' own files);
    SnapshotRefused on the first that is not confined, or on an entry that is not what
    docchat writes. Nothing is read but what a symlink check needs, and the bytes of a
    registered file outside the data directory (to keep it there)."""
    name = manifest.name
    files = manifest.files
    if not isinstance(files, dict):
        raise SnapshotRefused(f"{name}: the manifest's files are not a table")
    for rel, facts in files.items():
        confined(snapshot, rel, "snapshot file", name)
        if not rel.startswith(PARTS):
            raise SnapshotRefused(
                f"{name}: the manifest names a file docchat does not write: {rel}"
            )
        if not (
            isinstance(facts, dict)
            and isinstance(facts.get("sha256"), str)
            and SHA256.fullmatch(facts["sha256"])
            and isinstance(facts.get("size"), int)
        ):
            raise SnapshotRefused(f"{name}: the manifest's facts for {rel} are malformed")
    database = _database(snapshot, manifest)
    collections = _collections(snapshot, manifest)
    stored_rels = set()
    registered = []
    for kind in REGISTERED:
        entries = getattr(manifest, kind)
        if not isinstance(entries, list):
            raise SnapshotRefused(f"{name}: the manifest's {kind} are not a list")
        for entry in entries:
            placement = _place(snapshot, manifest, data_dir, kind, entry, keep_out)
            registered.append(placement)
            if entry.get("stored"):
                stored_rels.add(entry["stored"])
    plain = {
        snapshot / rel: confined(
            data_dir, rel.removeprefix("files/"), "restored file", name, keep_out
        )
        for rel in sorted(files)
        if rel.startswith("files/") and rel not in stored_rels
    }
    return Plan(database, collections, plain, registered)


def _database(snapshot: Path, manifest: Manifest) -> Path:
    kind = manifest.database.get("kind") if isinstance(manifest.database, dict) else None
    rel = manifest.database.get("file") if isinstance(manifest.database, dict) else None
    if kind not in DATABASE_FILES:
        raise SnapshotRefused(f"{manifest.name}: the manifest names an unknown database: {kind!r}")
    path = confined(snapshot, rel, "snapshot database file", manifest.name)
    if rel != DATABASE_FILES[kind] or rel not in manifest.files:
        raise SnapshotRefused(
            f"{manifest.name}: the manifest's database file {rel!r} is not one of its hashed "
            f"files at {DATABASE_FILES[kind]}"
        )
    return path


def _collections(snapshot: Path, manifest: Manifest) -> list[Path]:
    found = []
    collections = (
        manifest.vectors.get("collections") if isinstance(manifest.vectors, dict) else None
    )
    if not isinstance(collections, list):
        raise SnapshotRefused(f"{manifest.name}: the manifest's vectors are malformed")
    for info in collections:
        collection = info.get("name") if isinstance(info, dict) else None
        if not isinstance(info, dict) or not isinstance(info.get("count"), int):
            raise SnapshotRefused(f"{manifest.name}: a collection entry is malformed: {info!r}")
        folder = confined(snapshot, f"vectors/{collection}", "snapshot collection", manifest.name)
        if not isinstance(collection, str) or "/" in collection:
            raise SnapshotRefused(
                f"{manifest.name}: the manifest's collection {collection!r} points outside "
                "the snapshot's vectors/"
            )
        for part in COLLECTION_FILES:
            if f"vectors/{collection}/{part}" not in manifest.files:
                raise SnapshotRefused(
                    f"{manifest.name}: collection {collection}: vectors/{collection}/{part} "
                    "is not one of the manifest's hashed files"
                )
        found.append(folder)
    return found


def _absolute(value: object, what: str, name: str) -> PurePosixPath:
    """A registry path as docchat records it: absolute, without `..` or `.` parts."""
    if not isinstance(value, str) or "\x00" in value:
        raise SnapshotRefused(f"{name}: the manifest names no valid path for {what}: {value!r}")
    path = PurePosixPath(value)
    if not path.is_absolute() or any(p in (".", "..") for p in value.split("/")):
        raise SnapshotRefused(
            f"{name}: the manifest's {what} {value!r} is not a plain absolute path (it could "
            "point outside the data directory): the manifest is damaged or was tampered with"
        )
    return path


def _place(
    snapshot: Path,
    manifest: Manifest,
    data_dir: Path,
    kind: str,
    entry: object,
    keep_out: tuple[Path, ...],
) -> Placement:
    """Check one registry entry and decide where its file goes (see restore)."""
    name = manifest.name
    if not (
        isinstance(entry, dict)
        and isinstance(entry.get("name"), str)
        and isinstance(entry.get("sha256"), str)
        and SHA256.fullmatch(entry["sha256"])
        and isinstance(entry.get("size"), int)
    ):
        raise SnapshotRefused(f"{name}: a {kind[:-1]} entry of the manifest is malformed")
    what = f"{kind[:-1]} {entry['name']}"
    stored = None
    if entry.get("stored") is not None:
        stored = confined(snapshot, entry["stored"], f"snapshot copy of {what}", name)
        if entry["stored"] not in manifest.files:
            raise SnapshotRefused(
                f"{name}: the copy of {what} ({entry['stored']}) is not one of the manifest's "
                "hashed files: the manifest is damaged or was tampered with"
            )
    catalog = entry.get("catalog")
    if catalog is not None and (kind != "models" or catalog not in CATALOG):
        raise SnapshotRefused(f"{name}: {what} names an unknown catalog model {catalog!r}")
    old = _absolute(entry.get("path"), f"registry path of {what}", name)
    old_root = _absolute(manifest.data_dir, "data directory", name)
    rel: str | None
    if old.is_relative_to(old_root):
        rel = old.relative_to(old_root).as_posix()
    elif holds(Path(old), entry["sha256"], entry["size"]):
        # A file outside the data directory that this machine has with the registered
        # bytes: the registry points at it again, and nothing is ever written there.
        return Placement(kind, entry, stored, None, None, Path(old))
    elif catalog:
        rel = f"models/{catalog}.gguf"
    else:
        rel = f"{kind}/{old.name}"
    target = confined(data_dir, rel, f"place of {what}", name, keep_out)
    spare_rel = str(PurePosixPath(rel).with_name(f"{entry['sha256'][:12]}-{old.name}"))
    spare = confined(data_dir, spare_rel, f"place of {what}", name, keep_out)
    return Placement(kind, entry, stored, target, spare, target)


def holds(path: Path, sha256: str, size: int) -> bool:
    """A regular file (not a link) with these bytes."""
    return (
        path.is_file()
        and not path.is_symlink()
        and path.stat().st_size == size
        and file_sha256(path) == sha256
    )
