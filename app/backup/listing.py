"""The complete snapshots in a folder, and pruning the oldest of them."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from app.backup.manifest import MANIFEST, PARTIAL, PREFIX


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
