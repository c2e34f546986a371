"""Datasets: immutable snapshots of the active curated examples, with a content hash
and a train / held-out split fixed at build time. The rows are kept in the database and
in data_dir/datasets/NAME.jsonl; models come and go, datasets stay."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.curation import staleness
from app.curation.errors import Conflict, CurationError, NotFound
from app.store import audit
from app.store.models import CuratedExample, Dataset, DatasetRow
from common.files import write_atomically

Split = Literal["train", "held-out"]
SPLITS: tuple[Split, ...] = ("train", "held-out")
# A name becomes a file name: matched whole (fullmatch), so "abc\n" is no name.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
FOLDER = "datasets"
# What a row holds, in this order: an example's content, never its review metadata, so
# that the same examples always give the same bytes (and the same hash).
ROW_FIELDS = ("id", "collection", "question", "turns", "passages", "answer", "split")


def canonical(value: Any) -> bytes:
    """One JSON encoding per value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def split_score(seed: int, example_id: str) -> float:
    """Where an example falls in [0, 1) for a seed: the same every time, and independent
    of the other examples (a new example never moves an old one across the split)."""
    digest = hashlib.sha256(f"{seed}:{example_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(example_ids: list[str], held_out: float, seed: int) -> dict[str, Split]:
    """Each example's split: held-out below the share, train above. With two examples or
    more and a share above 0, each split gets at least one (the nearest to the line)."""
    scores = {i: split_score(seed, i) for i in example_ids}
    splits: dict[str, Split] = {
        i: "held-out" if s < held_out else "train" for i, s in scores.items()
    }
    if held_out > 0 and len(example_ids) >= 2:
        if "held-out" not in splits.values():
            splits[min(scores, key=lambda i: scores[i])] = "held-out"
        if "train" not in splits.values():
            splits[max(scores, key=lambda i: scores[i])] = "train"
    return splits


def record(example: CuratedExample, split: Split) -> dict[str, Any]:
    """An example as a dataset row."""
    return {
        "id": example.id,
        "collection": example.collection,
        "question": example.question,
        "turns": example.turns,
        "passages": example.passages,
        "answer": example.answer,
        "split": split,
    }


@dataclass(frozen=True)
class Snapshot:
    """A built dataset with its rows (sorted by example id), as training code reads it."""

    name: str
    collection: str | None
    sha256: str
    n_examples: int
    n_train: int
    n_held_out: int
    held_out: float
    seed: int
    path: Path
    created_by: str
    created_at: datetime
    rows: tuple[dict[str, Any], ...]

    def split(self, which: Split | Literal["all"] = "all") -> list[dict[str, Any]]:
        """The rows of one split (or all of them)."""
        return [r for r in self.rows if which == "all" or r["split"] == which]

    def file_ok(self) -> bool:
        """Whether the JSONL file is there and still has the recorded hash."""
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest() == self.sha256
        except OSError:
            return False

    def info(self) -> dict[str, Any]:
        """What `dataset show` and the API say about it (without the rows)."""
        return {
            "name": self.name,
            "collection": self.collection,
            "sha256": self.sha256,
            "n_examples": self.n_examples,
            "n_train": self.n_train,
            "n_held_out": self.n_held_out,
            "held_out": self.held_out,
            "seed": self.seed,
            "path": str(self.path),
            "file_ok": self.file_ok(),
            "created_by": self.created_by or None,
            "created_at": self.created_at.isoformat(),
        }


def snapshot(dataset: Dataset, data_dir: Path, *, with_rows: bool = True) -> Snapshot:
    """The dataset as a Snapshot (its rows read from the database)."""
    return Snapshot(
        name=dataset.name,
        collection=dataset.collection,
        sha256=dataset.sha256,
        n_examples=dataset.n_examples,
        n_train=dataset.n_train,
        n_held_out=dataset.n_held_out,
        held_out=dataset.held_out,
        seed=dataset.seed,
        path=data_dir / dataset.path,
        created_by=dataset.created_by,
        created_at=dataset.created_at,
        rows=tuple(r.record for r in dataset.rows) if with_rows else (),
    )


def build(
    session: Session,
    data_dir: Path,
    name: str,
    *,
    collection: str | None = None,
    held_out: float = 0.2,
    seed: int = 0,
    created_by: str = "",
) -> Snapshot:
    """Snapshot the active examples (staleness checked first) as dataset NAME; a name
    is never built twice."""
    check_new(session, name, held_out)
    staleness.check(session)
    query = select(CuratedExample).where(CuratedExample.status == "active")
    if collection is not None:
        query = query.where(CuratedExample.collection == collection)
    examples = sorted(session.scalars(query), key=lambda e: e.id)
    if not examples:
        where = f" in collection {collection!r}" if collection else ""
        raise CurationError(f"no active curated examples{where} to build a dataset from")
    splits = assign_splits([e.id for e in examples], held_out, seed)
    records = [record(e, splits[e.id]) for e in examples]
    return store(
        session,
        data_dir,
        name,
        records,
        collection=collection,
        held_out=held_out,
        seed=seed,
        created_by=created_by,
    )


def check_new(session: Session, name: str, held_out: float) -> None:
    """CurationError unless NAME is a free, valid dataset name and the share is one."""
    if not NAME.fullmatch(name):
        raise CurationError("name: 1-100 of [A-Za-z0-9._-], starting with a letter or digit")
    if not 0 <= held_out < 1:
        raise CurationError("held_out: a share from 0 up to (not including) 1")
    if session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
        raise Conflict(f"dataset {name!r} exists; datasets are immutable: choose another name")


def store(
    session: Session,
    data_dir: Path,
    name: str,
    records: list[dict[str, Any]],
    *,
    collection: str | None,
    held_out: float,
    seed: int,
    created_by: str,
    action: str = "dataset.build",
) -> Snapshot:
    """Keep rows (ROW_FIELDS each, split assigned, sorted by id) as dataset NAME: in the
    database and as its JSONL file, hashed."""
    check_new(session, name, held_out)
    lines = [canonical(r) + b"\n" for r in records]
    data = b"".join(lines)
    relative = f"{FOLDER}/{name}.jsonl"
    dataset = Dataset(
        name=name,
        collection=collection,
        sha256=hashlib.sha256(data).hexdigest(),
        n_examples=len(records),
        n_train=sum(r["split"] == "train" for r in records),
        n_held_out=sum(r["split"] == "held-out" for r in records),
        held_out=held_out,
        seed=seed,
        path=relative,
        created_by=created_by,
        rows=[
            DatasetRow(
                example_id=r["id"],
                split=r["split"],
                sha256=hashlib.sha256(line).hexdigest(),
                record=r,
            )
            for r, line in zip(records, lines, strict=True)
        ],
    )
    session.add(dataset)
    session.flush()  # the unique name refuses a build racing this one, before any file
    # A file without a row is what a build killed before its commit left: replaced.
    write_atomically(data_dir / relative, data)
    audit.record(
        session,
        created_by,
        action,
        name,
        detail={
            "sha256": dataset.sha256,
            "examples": dataset.n_examples,
            "held_out": dataset.n_held_out,
            "collection": collection,
        },
    )
    return snapshot(dataset, data_dir)


def get(session: Session, name: str) -> Dataset:
    """A dataset by name."""
    dataset = session.scalar(select(Dataset).where(Dataset.name == name))
    if dataset is None:
        raise NotFound(f"no dataset {name!r}")
    return dataset


def load(session: Session, data_dir: Path, name: str) -> Snapshot:
    """A dataset with its rows, by name: what training and export read."""
    return snapshot(get(session, name), data_dir)


def listed(session: Session, data_dir: Path) -> list[Snapshot]:
    """Every dataset, newest first (without rows)."""
    found = session.scalars(select(Dataset).order_by(Dataset.created_at.desc(), Dataset.name))
    return [snapshot(d, data_dir, with_rows=False) for d in found]


def diff(session: Session, a: str, b: str) -> dict[str, Any]:
    """What changed from dataset A to dataset B, by example id: added, removed, changed
    (with the fields that differ) and how many are the same."""
    old = {r.example_id: r for r in get(session, a).rows}
    new = {r.example_id: r for r in get(session, b).rows}

    def brief(row: DatasetRow) -> dict[str, Any]:
        return {"id": row.example_id, "question": row.record.get("question"), "split": row.split}

    changed = []
    for example_id in sorted(old.keys() & new.keys()):
        before, after = old[example_id], new[example_id]
        if before.sha256 != after.sha256:
            fields = [f for f in ROW_FIELDS if before.record.get(f) != after.record.get(f)]
            changed.append({**brief(after), "fields": fields})
    return {
        "a": a,
        "b": b,
        "added": [brief(new[i]) for i in sorted(new.keys() - old.keys())],
        "removed": [brief(old[i]) for i in sorted(old.keys() - new.keys())],
        "changed": changed,
        "unchanged": len(old.keys() & new.keys()) - len(changed),
    }
