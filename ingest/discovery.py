"""Finding the files an ingest reads: what lies under the roots, less what is left out."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from ingest.loaders import SUPPORTED_SUFFIXES


@dataclass(frozen=True)
class SourceFile:
    """A file found under one of the ingest roots."""

    path: Path  # absolute, resolved
    source: str  # shown in citations: relative to the folder the user named


def excluded(relative: str, patterns: Sequence[str]) -> bool:
    """Whether a path (relative to its root) matches a pattern, at any depth."""
    return any(fnmatch(relative, p) or fnmatch(relative, "*/" + p) for p in patterns)


def discover(roots: list[Path], exclude: Sequence[str] = ()) -> tuple[list[SourceFile], list[Path]]:
    """Supported files under the roots, and the unsupported ones (skipped).

    Links are not followed out of a root: a link may point anywhere on the machine.
    Hidden files and folders (.git, .venv...) are left out, and so are paths matching
    an `exclude` glob (relative to the root, e.g. "_sources/*").
    """
    found: dict[Path, SourceFile] = {}
    unsupported: list[Path] = []
    for root in roots:
        root = root.expanduser().resolve()
        if root.is_file():
            candidates: Iterator[tuple[Path, Path]] = iter([(root, root.parent)])
        else:
            candidates = ((p, root.parent) for p in _walk(root))
        for path, base in candidates:
            if path != root and excluded(path.relative_to(root).as_posix(), exclude):
                continue
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                unsupported.append(path)
                continue
            found.setdefault(path, SourceFile(path, path.relative_to(base).as_posix()))
    return sorted(found.values(), key=lambda f: f.source), unsupported


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            real = path.resolve()
            # A link inside the tree is the file it points to (counted once).
            if real.is_relative_to(root) and real.is_file():
                yield real
