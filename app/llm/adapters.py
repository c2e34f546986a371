"""The adapter registry: LoRA adapters bound to the base model they were trained on.

An adapter is a GGUF adapter file pinned by its sha256, with the base model's hash and
dimensions, the dataset (name and content hash) and the hyperparameters it came from,
the training's losses and its latest evaluation. It may only be served on the very
file it was trained on: `compatibility` says why not otherwise (another file, another
architecture, other dimensions), and a new base gets its own adapter, trained again
from the same dataset (`docchat finetune train`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.llm.gguf_info import read_info
from app.llm.registry import NAME, ModelEntry, RegistryError, store_report, verify_file
from app.store.db import Database
from app.store.models import Adapter
from common.files import file_sha256


@dataclass(frozen=True)
class AdapterEntry:
    """A registered adapter as callers see it."""

    name: str
    path: Path
    sha256: str
    size_bytes: int
    base_name: str
    base_sha256: str
    architecture: str
    dimensions: dict[str, int]
    dataset_name: str
    dataset_sha256: str
    hyperparameters: dict[str, Any]
    training: dict[str, Any]
    created_at: datetime
    eval_report: dict[str, Any] | None
    evaluated_at: datetime | None

    @classmethod
    def of(cls, row: Adapter) -> AdapterEntry:
        """The entry of a database row."""
        return cls(
            name=row.name,
            path=Path(row.path),
            sha256=row.sha256,
            size_bytes=row.size_bytes,
            base_name=row.base_name,
            base_sha256=row.base_sha256,
            architecture=row.architecture,
            dimensions=dict(row.dimensions),
            dataset_name=row.dataset_name,
            dataset_sha256=row.dataset_sha256,
            hyperparameters=dict(row.hyperparameters),
            training=dict(row.training),
            created_at=row.created_at,
            eval_report=row.eval_report,
            evaluated_at=row.evaluated_at,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for `finetune show --json` and the admin API."""
        return {
            "name": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "base_name": self.base_name,
            "base_sha256": self.base_sha256,
            "architecture": self.architecture,
            "dimensions": self.dimensions,
            "dataset_name": self.dataset_name,
            "dataset_sha256": self.dataset_sha256,
            "hyperparameters": self.hyperparameters,
            "training": self.training,
            "created_at": self.created_at.isoformat(),
            "evaluated_at": self.evaluated_at.isoformat() if self.evaluated_at else None,
            "eval_report": self.eval_report,
        }


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


class AdapterRegistry:
    """Adds, lists and checks LoRA adapters, in the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        path: Path,
        *,
        name: str,
        base: ModelEntry,
        dataset_name: str,
        dataset_sha256: str,
        hyperparameters: dict[str, Any],
        training: dict[str, Any],
    ) -> AdapterEntry:
        """Register an adapter file trained on `base`."""
        path = path.expanduser().resolve()
        if not path.is_file():
            raise RegistryError(f"no such adapter file: {path}")
        if not NAME.fullmatch(name):
            raise RegistryError(f"invalid adapter name {name!r}: use 1-100 of [A-Za-z0-9._-]")
        dims = read_info(base.path).dimensions
        with self.db.session() as session:
            if session.scalar(select(Adapter).where(Adapter.name == name)):
                raise RegistryError(f"an adapter named {name!r} is registered already")
            row = Adapter(
                name=name,
                path=str(path),
                sha256=file_sha256(path),
                size_bytes=path.stat().st_size,
                base_name=base.name,
                base_sha256=base.sha256,
                architecture=base.architecture,
                dimensions=dims,
                dataset_name=dataset_name,
                dataset_sha256=dataset_sha256,
                hyperparameters=hyperparameters,
                training=training,
            )
            session.add(row)
            session.flush()
            return AdapterEntry.of(row)

    def entries(self) -> list[AdapterEntry]:
        """Every adapter, oldest first."""
        with self.db.session() as session:
            rows = session.scalars(select(Adapter).order_by(Adapter.created_at)).all()
            return [AdapterEntry.of(row) for row in rows]

    def get(self, name: str) -> AdapterEntry:
        """The adapter named `name`, or RegistryError listing the known names."""
        with self.db.session() as session:
            row = session.scalar(select(Adapter).where(Adapter.name == name))
            if row is None:
                known = ", ".join(session.scalars(select(Adapter.name))) or "none yet"
                raise RegistryError(f"no adapter named {name!r} (registered: {known})")
            return AdapterEntry.of(row)

    def verify(self, adapter: AdapterEntry) -> None:
        """ModelFileChanged unless the adapter file is there with the registered bytes."""
        verify_file("adapter", adapter.name, adapter.path, adapter.sha256)

    def record_report(self, name: str, report: dict[str, Any]) -> None:
        """Keep the latest evaluation of an adapter."""
        store_report(self.db, Adapter, "adapter", name, report)
