"""A folder on the server's disk: what `docchat ingest FOLDER` reads, on a schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from ingest.discovery import discover
from ingest.pipeline import Listing
from ingest.sources.base import Fetched, KindConfig, SourceError, SourceKind


class FolderConfig(KindConfig):
    """A folder source's settings."""

    path: Path = Field(description="The folder (absolute, on the machine that syncs).")
    exclude: list[str] = Field(
        default_factory=list, description="Globs of paths to leave out, as ingest --exclude."
    )


class FolderSource(SourceKind):
    """Files under a folder; citations name them relative to its parent, as ingest does."""

    name = "folder"
    target = "path"
    Config = FolderConfig
    config: FolderConfig

    def fetch(self, state: dict[str, Any]) -> Fetched:
        root = self.config.path.expanduser()
        if not root.is_dir():
            # A folder that vanished (an unmounted share) must not delete its documents.
            raise SourceError(f"no such folder: {root}")
        root = root.resolve()
        files, unsupported = discover([root], [*self.context.exclude, *self.config.exclude])
        return Fetched(root, Listing(files, unsupported), {}, f"{len(files)} files")

    def describe(self) -> str:
        return str(self.config.path)
