"""What the console's health charts draw: per hour, from the database alone (so they work
without Prometheus), answers, their time p50/p95, refusals, answers judged ungrounded,
thumbs-down, and the chunks each ingest run wrote."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.db import Database
from app.store.models import IngestRun
from app.store.sources import Source
from app.telemetry.observations import AnswerObservation, RatingObservation, SqlObservations

HOUR = 3600.0


@dataclass(frozen=True)
class HourFigures:
    """One hour of answers and ratings."""

    at: str  # the hour's start, ISO 8601 UTC
    answers: int
    seconds_p50: float | None  # question to the end of the answer
    seconds_p95: float | None
    refused: float | None  # share of answers that said the docs do not cover it
    ungrounded: float | None  # share of checked answers judged not supported
    ratings: int
    down: float | None  # share of ratings that were thumbs-down


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 3)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def hourly(db: Database, hours: int, now: float | None = None) -> list[dict[str, object]]:
    """The last `hours` whole hours and the current one, oldest first."""
    now = time.time() if now is None else now
    end = (math.floor(now / HOUR) + 1) * HOUR
    start = end - (hours + 1) * HOUR
    source = SqlObservations(db)
    # Each answer and rating into its hour, in one pass.
    answers: list[list[AnswerObservation]] = [[] for _ in range(hours + 1)]
    ratings: list[list[RatingObservation]] = [[] for _ in range(hours + 1)]
    for a in source.answers(start, end):
        answers[int((a.at - start) // HOUR)].append(a)
    for r in source.ratings(start, end):
        ratings[int((r.at - start) // HOUR)].append(r)
    figures = []
    for i, (these, rated) in enumerate(zip(answers, ratings, strict=True)):
        seconds = [a.seconds for a in these if a.seconds is not None]
        checked = [a for a in these if a.grounded is not None]
        figures.append(
            HourFigures(
                at=datetime.fromtimestamp(start + i * HOUR, UTC).isoformat(timespec="seconds"),
                answers=len(these),
                seconds_p50=_quantile(seconds, 0.5),
                seconds_p95=_quantile(seconds, 0.95),
                refused=_share(sum(a.refused for a in these), len(these)),
                ungrounded=_share(sum(not a.grounded for a in checked), len(checked)),
                ratings=len(rated),
                down=_share(sum(r.down for r in rated), len(rated)),
            )
        )
    return [asdict(f) for f in figures]


def ingest_volume(
    db: Database, hours: int, now: float | None = None, data_dir: Path | None = None
) -> list[dict[str, object]]:
    """The ingest runs of the last `hours` (not dry runs), oldest first: when, which
    collection and source, what they changed."""
    now = time.time() if now is None else now
    since = datetime.fromtimestamp(now - hours * HOUR, UTC)
    query = (
        select(IngestRun)
        .where(IngestRun.dry_run.is_(False), IngestRun.started_at >= since)
        .order_by(IngestRun.started_at)
    )
    with db.session() as session:
        origins = _origins(session, data_dir)
        return [
            {
                "at": run.started_at.isoformat(timespec="seconds"),
                "collection": run.collection,
                "source": _origin(run.roots, origins, data_dir),
                "status": run.status,
                "new": run.new,
                "changed": run.changed,
                "deleted": run.deleted,
                "failed": run.failed,
                "quarantined": run.quarantined,
                "chunks_written": run.chunks_written,
            }
            for run in session.scalars(query)
        ]


def _origins(session: Session, data_dir: Path | None) -> list[tuple[Path, str]]:
    """(the folder a source's runs ingest, its name) for every source: a folder source's
    own path, or the working folder where the others fetch (ingest/sources)."""
    found = []
    for source in session.scalars(select(Source)):
        if source.kind == "folder" and source.config.get("path"):
            found.append((Path(source.config["path"]).expanduser().resolve(), source.name))
        if data_dir is not None:
            found.append(((data_dir / "sources" / source.id).resolve(), source.name))
    return found


def _origin(roots: str, origins: list[tuple[Path, str]], data_dir: Path | None) -> str:
    """Who a run ingested for: a source's name, "upload", or "ingest" (the command)."""
    first = Path(roots.splitlines()[0]) if roots else None
    if first is None:
        return "ingest"
    for folder, name in origins:
        if first == folder or first.is_relative_to(folder):
            return name
    if data_dir is not None and first.is_relative_to((data_dir / "uploads").resolve()):
        return "upload"
    return "ingest"
