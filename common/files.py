"""Files written whole or not at all, and hashed as they are read: one helper each."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path

# Read size when hashing: large enough for gigabyte model files, small enough to report
# progress often.
CHUNK = 8 * 2**20


def file_sha256(path: Path, progress: Callable[[int], None] | None = None) -> str:
    """The file's sha256, read in chunks; `progress` is told the bytes of each chunk."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target, then rename: a killed writer leaves no partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with partial.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
