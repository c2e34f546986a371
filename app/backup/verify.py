"""Checking a snapshot whole before anything is written: its manifest and signature, its
schema revision, every path it names, and every file's size and hash.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from app.backup import signing, stores
from app.backup.manifest import (
    FORMAT,
    NOT_FILES,
    SKIP_SUFFIXES,
    Manifest,
    check_schema,
    read_manifest,
)
from app.backup.paths import Plan, plan
from app.backup.progress import Progress, Quiet
from app.backup.stores import SnapshotRefused
from app.settings import Settings
from common.files import file_sha256


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
