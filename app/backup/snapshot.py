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

This module is the one the CLI and the tests use; each step lives in its own:
manifest.py (the format), create.py, verify.py, restore.py, listing.py (list and
prune), paths.py (every path a manifest names, checked), stores.py (the stores' own
export and import), signing.py.
"""

from __future__ import annotations

from app.backup.create import create
from app.backup.listing import prune, snapshots
from app.backup.manifest import (
    FORMAT,
    MANIFEST,
    MANIFEST_FIELDS,
    NOT_FILES,
    PARTIAL,
    PREFIX,
    SKIP_SUFFIXES,
    Manifest,
    check_schema,
    code_revision,
    read_manifest,
)
from app.backup.paths import PG_FILE, SQLITE_FILE
from app.backup.progress import Progress, Quiet
from app.backup.restore import Restored, restore
from app.backup.stores import BackupError, SnapshotRefused
from app.backup.verify import Checked, checked, verify

__all__ = [
    "FORMAT",
    "MANIFEST",
    "MANIFEST_FIELDS",
    "NOT_FILES",
    "PARTIAL",
    "PG_FILE",
    "PREFIX",
    "SKIP_SUFFIXES",
    "SQLITE_FILE",
    "BackupError",
    "Checked",
    "Manifest",
    "Progress",
    "Quiet",
    "Restored",
    "SnapshotRefused",
    "check_schema",
    "checked",
    "code_revision",
    "create",
    "prune",
    "read_manifest",
    "restore",
    "snapshots",
    "verify",
]
