"""One `docchat finetune train`: a dataset's train split, the active base model, a new
registered adapter bound to that base.

The adapter file and its resumable checkpoint live in the data directory
(adapters/NAME.gguf, adapters/.work/NAME/); the dataset is read from its snapshot,
checked against its hash, and never changed, so the same dataset trains again for the
next base model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from app.curation import datasets
from app.curation.export import chat_rows
from app.finetune.train import TrainConfig, TrainingError, train_adapter
from app.releases.entries import AdapterEntry, ModelEntry
from app.releases.errors import RegistryError
from app.releases.registry import Registry
from app.store.db import Database


def dataset_rows(
    db: Database, data_dir: Path, name: str, split: Literal["train", "held-out"]
) -> tuple[str, list[list[dict[str, str]]]]:
    """The dataset's hash and one split as chat messages (TrainingError if its file
    changed since it was built)."""
    with db.session() as session:
        snapshot = datasets.load(session, data_dir, name)
    if not snapshot.file_ok():
        raise TrainingError(
            f"dataset {name!r}: its file {snapshot.path} is missing or changed since it was "
            "built; restore it from a backup"
        )
    return snapshot.sha256, chat_rows(snapshot, split)


def adapter_name(dataset: str, base: ModelEntry, taken: set[str]) -> str:
    """`DATASET-on-BASE`, numbered when that name is taken."""
    stem = f"{dataset}-on-{base.name}"[:90]
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}"
    return name


def train_for_active_base(
    db: Database,
    data_dir: Path,
    dataset: str,
    *,
    config: TrainConfig,
    name: str | None = None,
    device: str | None = None,
    progress: Callable[[int, int, float], None] = lambda step, total, loss: None,
) -> AdapterEntry:
    """Train an adapter for the active base model on `dataset` and register it."""
    registry = Registry(db)
    active = registry.active()
    if active is None:
        raise RegistryError("no model is active yet: start the server once first")
    base = active.base
    dataset_sha256, rows = dataset_rows(db, data_dir, dataset, "train")
    taken = {a.name for a in registry.adapters()}
    name = name or adapter_name(dataset, base, taken)
    if name in taken:
        raise RegistryError(f"an adapter named {name!r} is registered already")
    folder = data_dir / "adapters"
    result = train_adapter(
        base.path,
        base_sha256=base.sha256,
        parameters=base.parameters or base.size_bytes * 2,
        rows=rows,
        out=folder / f"{name}.gguf",
        work_dir=folder / ".work" / name,
        config=config,
        name=name,
        device=device,
        progress=progress,
    )
    return registry.add_adapter(
        result.adapter,
        name=name,
        base=base,
        dataset_name=dataset,
        dataset_sha256=dataset_sha256,
        hyperparameters=config.as_dict(),
        training={
            "steps": result.steps,
            "examples": result.examples,
            "first_loss": round(result.first_loss, 4),
            "last_loss": round(result.last_loss, 4),
            "seconds": round(result.seconds, 1),
            "seconds_per_step": round(result.seconds_per_step, 2),
            "device": result.device,
            "resumed_at": result.resumed_at,
        },
    )
