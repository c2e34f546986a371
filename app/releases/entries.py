"""Registered releases as callers see them: a model, an adapter, an activation.

A ModelEntry may carry the adapter served on it: that pair is a release (what answers),
named `model+adapter`. An adapter may only be served on the very file it was trained
on: `compatibility` says why not otherwise (another file, another architecture, other
dimensions), and a new base gets its own adapter, trained again from the same dataset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from app.llm.gguf_info import read_info
from app.store.models import Adapter, ChatModel

# The two kinds of registered file.
Kind = Literal["model", "adapter"]

# Names become file names: matched whole (fullmatch), so "abc\n" is no name.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True, kw_only=True)
class Registered:
    """What every registered file has: a name, the file pinned by its hash, and its
    latest evaluation."""

    kind: ClassVar[Kind]
    name: str
    path: Path
    sha256: str
    size_bytes: int
    eval_report: dict[str, Any] | None
    evaluated_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for `--json` output and the admin API."""
        return {
            "name": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            **self._own_fields(),
            "evaluated_at": self.evaluated_at.isoformat() if self.evaluated_at else None,
            "eval_report": self.eval_report,
        }

    def _own_fields(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def _common(row: ChatModel | Adapter) -> dict[str, Any]:
        """The fields every registered row has, as the entry holds them."""
        return {
            "name": row.name,
            "path": Path(row.path),
            "sha256": row.sha256,
            "size_bytes": row.size_bytes,
            "eval_report": row.eval_report,
            "evaluated_at": row.evaluated_at,
        }


@dataclass(frozen=True, kw_only=True)
class AdapterEntry(Registered):
    """A registered LoRA adapter, bound to the base model it was trained on, with the
    dataset and hyperparameters it came from and the training's figures."""

    kind: ClassVar[Kind] = "adapter"
    base_name: str
    base_sha256: str
    architecture: str
    dimensions: dict[str, int]
    dataset_name: str
    dataset_sha256: str
    hyperparameters: dict[str, Any]
    training: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, row: Adapter) -> AdapterEntry:
        """The entry of a database row."""
        return cls(
            **cls._common(row),
            base_name=row.base_name,
            base_sha256=row.base_sha256,
            architecture=row.architecture,
            dimensions=dict(row.dimensions),
            dataset_name=row.dataset_name,
            dataset_sha256=row.dataset_sha256,
            hyperparameters=dict(row.hyperparameters),
            training=dict(row.training),
            created_at=row.created_at,
        )

    def _own_fields(self) -> dict[str, Any]:
        return {
            "base_name": self.base_name,
            "base_sha256": self.base_sha256,
            "architecture": self.architecture,
            "dimensions": self.dimensions,
            "dataset_name": self.dataset_name,
            "dataset_sha256": self.dataset_sha256,
            "hyperparameters": self.hyperparameters,
            "training": self.training,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, kw_only=True)
class ModelEntry(Registered):
    """A registered chat model (a GGUF file and what it says about itself), and the
    adapter served on it if any: together, a release."""

    kind: ClassVar[Kind] = "model"
    architecture: str
    parameters: int | None
    quantization: str
    context_length: int | None
    chat_template: bool
    source: str
    added_at: datetime
    active: bool = False
    # The LoRA adapter served on it (the active release's, or a candidate's).
    adapter: AdapterEntry | None = None

    @property
    def adapter_sha256(self) -> str | None:
        """The served adapter's hash (None: the base model alone)."""
        return self.adapter.sha256 if self.adapter else None

    @property
    def release(self) -> str:
        """The model's name, with its adapter's after a plus sign."""
        return f"{self.name}+{self.adapter.name}" if self.adapter else self.name

    @property
    def base(self) -> ModelEntry:
        """The model alone, without an adapter."""
        return replace(self, adapter=None)

    @classmethod
    def of(cls, row: ChatModel, active: bool) -> ModelEntry:
        """The entry of a database row."""
        return cls(
            **cls._common(row),
            architecture=row.architecture,
            parameters=row.parameters,
            quantization=row.quantization,
            context_length=row.context_length,
            chat_template=row.chat_template,
            source=row.source,
            added_at=row.added_at,
            active=active,
        )

    def _own_fields(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "parameters": self.parameters,
            "quantization": self.quantization,
            "context_length": self.context_length,
            "chat_template": self.chat_template,
            "source": self.source,
            "added_at": self.added_at.isoformat(),
            "active": self.active,
            "adapter": self.adapter.name if self.adapter else None,
        }


@dataclass(frozen=True)
class Activation:
    """One change of the release in service."""

    model_name: str
    model_sha256: str
    previous: str | None
    action: str
    forced: bool
    actor: str
    note: str
    created_at: datetime
    adapter_name: str | None = None
    adapter_sha256: str | None = None


def compatibility(adapter: AdapterEntry, base: ModelEntry) -> list[str]:
    """Why `adapter` cannot be served on `base` (empty: it can)."""
    reasons = []
    if adapter.base_sha256 != base.sha256:
        reasons.append(
            f"adapter {adapter.name!r} was trained on {adapter.base_name!r} (sha256 "
            f"{adapter.base_sha256[:12]}…), not on {base.name!r} ({base.sha256[:12]}…)"
        )
    if adapter.architecture != base.architecture:
        reasons.append(
            f"architecture {adapter.architecture!r} against the model's {base.architecture!r}"
        )
    if base.path.is_file():
        dims = read_info(base.path).dimensions
        differ = [
            f"{key} {value} against {dims.get(key)}"
            for key, value in sorted(adapter.dimensions.items())
            if dims.get(key) != value
        ]
        if differ:
            reasons.append("dimensions differ: " + ", ".join(differ))
    return reasons
