"""Source kinds: where a collection's documents come from (ingest/sources/base.py)."""

from __future__ import annotations

from ingest.sources.base import SourceKind
from ingest.sources.folder import FolderSource
from ingest.sources.git import GitSource
from ingest.sources.website import WebsiteSource

# Every kind by the name a source stores; a new kind is added here.
KINDS: dict[str, type[SourceKind]] = {
    kind.name: kind for kind in (FolderSource, GitSource, WebsiteSource)
}
