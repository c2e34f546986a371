"""The snapshot format: how a snapshot folder is named, what it leaves out, and its
manifest (written by create, read back here, its schema revision checked against this
code's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from app import __version__
from app.backup.stores import BackupError, SnapshotRefused
from app.store.db import MIGRATIONS

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
