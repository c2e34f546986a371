"""The one interface every source kind implements, and what a fetch hands the pipeline.

A kind brings its documents onto local disk (a folder it names, a git checkout, a
mirror of a website) and says which files the run covers, under which citation, and
(when it knows) which changed; the incremental pipeline (ingest/pipeline.py) does the
rest: content hashes, quality checks, quarantine, the mass-change guard, deletions.
A new kind (Confluence, SharePoint) is one module with a `SourceKind` subclass, added
to KINDS in ingest/sources/__init__.py: docs/sources.md says how.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr

from ingest.pipeline import Listing


class SourceError(Exception):
    """A source cannot be synced now (unreachable, credentials refused, too large); the
    message is shown as the source's last error. Nothing is written or removed."""


class KindConfig(BaseModel):
    """A kind's stored settings; unknown keys are refused (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class SyncContext:
    """What a kind may use besides its own config: set by the operator, not the source."""

    workdir: Path  # the source's own folder under data_dir/sources (clones, mirrors)
    credentials: dict[str, SecretStr] = field(default_factory=dict)
    ssh_keys: dict[str, SecretStr] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()  # ingest.exclude: globs every kind leaves out
    allow_private_addresses: bool = False
    user_agent: str = "docchat-sources/1"
    request_timeout_s: float = 30.0
    git_timeout_s: float = 600.0


@dataclass
class Fetched:
    """A fetch's result: the root the pipeline covers, its listing, and the state to
    keep once the ingest has finished (never before: a killed sync starts over)."""

    root: Path
    listing: Listing | None  # None: the pipeline walks `root` as `docchat ingest` does
    state: dict[str, Any]
    # A line for the source's status ("commit 1a2b3c4", "37 pages, 35 unchanged").
    note: str = ""


class SourceKind(ABC):
    """One kind of source: its config model and how to fetch what it holds."""

    name: ClassVar[str]
    Config: ClassVar[type[KindConfig]]
    # The config key `docchat sources add NAME KIND TARGET` sets (path, url, start_url).
    target: ClassVar[str]

    def __init__(self, config: KindConfig, context: SyncContext) -> None:
        self.config = config
        self.context = context

    @classmethod
    def validate(cls, raw: dict[str, Any]) -> KindConfig:
        """The config checked (pydantic ValidationError when it is wrong)."""
        return cls.Config.model_validate(raw)

    @abstractmethod
    def fetch(self, state: dict[str, Any]) -> Fetched:
        """Bring the source's current documents to local disk; SourceError if it cannot."""

    def describe(self) -> str:
        """One line naming where the documents come from (for `sources list`)."""
        return ""
