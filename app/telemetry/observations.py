"""What the anomaly monitors (app/telemetry/anomaly.py) observe: each finished answer,
each rating and the documents recent ingest runs deleted, read back from the database;
answers and ratings are kept for a baseline's span."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from sqlalchemy import func, select

from app.store.db import Database
from app.store.models import Document, Feedback, IngestRun, Message

SETTLE_S = 600.0  # answers still running: windows ending later than this are not cached


@dataclass(frozen=True)
class AnswerObservation:
    """One finished answer, as the signals see it."""

    at: float  # epoch seconds of the question
    grounded: bool | None  # None: not checked (no context, withheld)
    refused: bool  # no context, withheld, or replaced by a notice
    top_score: float | None
    length: int | None  # characters of an answer that was given (None when refused)
    seconds: float | None  # question to the end of the answer


@dataclass(frozen=True)
class RatingObservation:
    """One rating of an answer."""

    at: float
    down: bool


ObservationT = TypeVar("ObservationT", AnswerObservation, RatingObservation)


class Observations(Generic[ObservationT]):
    """Observations of the last `span` seconds, sorted by time, from a fetch function.

    The old part is fetched again every `refresh` seconds; between, only what came
    after it (the last `refresh` seconds and the answers that may still be running).
    """

    def __init__(
        self,
        fetch: Callable[[float, float], list[ObservationT]],
        span: float,
        refresh: float = 3600.0,
    ) -> None:
        self.fetch: Callable[[float, float], list[ObservationT]] = fetch
        self.span, self.refresh = span, refresh
        self.stable: list[ObservationT] = []
        self.stable_times: list[float] = []
        self.stable_until = -math.inf
        self.loaded_at = -math.inf
        self.observations: list[ObservationT] = []
        self.times: list[float] = []

    def update(self, now: float) -> None:
        """Read what is new up to `now`."""
        if not 0 <= now - self.loaded_at < self.refresh:
            self.stable_until, self.loaded_at = now - SETTLE_S, now
            self.stable = self.fetch(now - self.span, self.stable_until)
            self.stable_times = [e.at for e in self.stable]
        fresh = self.fetch(self.stable_until, now)
        self.observations = self.stable + fresh
        self.times = self.stable_times + [e.at for e in fresh]

    def between(self, start: float, end: float) -> list[ObservationT]:
        """The observations in [start, end)."""
        lo = bisect.bisect_left(self.times, start)
        hi = bisect.bisect_left(self.times, end, lo)
        return self.observations[lo:hi]


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class SqlObservations:
    """The signals' observations, read from the messages, feedback and ingest_runs tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def answers(self, start: float, end: float) -> list[AnswerObservation]:
        """Answers asked in [start, end) that finished (complete or withheld)."""
        query = (
            select(
                Message.created_at,
                Message.status,
                Message.answered_from_docs,
                Message.checks,
                func.length(Message.content),
            )
            .where(
                Message.role == "assistant",
                Message.status.in_(("complete", "blocked")),
                Message.created_at >= _moment(start),
                Message.created_at < _moment(end),
            )
            .order_by(Message.created_at)
        )
        found = []
        with self.db.session() as session:
            for created, status, from_docs, checks, length in session.execute(query):
                checks = checks or {}
                refused = (
                    status == "blocked"
                    or from_docs is False
                    or checks.get("replaced_by") == "notice"
                )
                grounded = checks.get("grounded")
                score, seconds = checks.get("retrieval_score"), checks.get("seconds")
                found.append(
                    AnswerObservation(
                        _epoch(created),
                        None if grounded is None else bool(grounded),
                        refused,
                        None if score is None else float(score),
                        None if refused else int(length or 0),
                        None if seconds is None else float(seconds),
                    )
                )
        return found

    def ratings(self, start: float, end: float) -> list[RatingObservation]:
        """Ratings given in [start, end)."""
        query = (
            select(Feedback.created_at, Feedback.rating)
            .where(Feedback.created_at >= _moment(start), Feedback.created_at < _moment(end))
            .order_by(Feedback.created_at)
        )
        with self.db.session() as session:
            return [
                RatingObservation(_epoch(at), rating < 0) for at, rating in session.execute(query)
            ]

    def drops(self, start: float, end: float) -> dict[str, tuple[int, int]]:
        """{collection: (documents now, documents deleted by runs finished in [start,
        end))} for the collections that lost any."""
        with self.db.session() as session:
            deleted = {
                collection: total
                for collection, total in session.execute(
                    select(IngestRun.collection, func.sum(IngestRun.deleted))
                    .where(
                        IngestRun.dry_run.is_(False),
                        IngestRun.finished_at >= _moment(start),
                        IngestRun.finished_at < _moment(end),
                    )
                    .group_by(IngestRun.collection)
                    .having(func.sum(IngestRun.deleted) > 0)
                )
            }
            if not deleted:
                return {}
            documents = {
                collection: count
                for collection, count in session.execute(
                    select(Document.collection, func.count())
                    .where(Document.collection.in_(deleted))
                    .group_by(Document.collection)
                )
            }
        return {c: (int(documents.get(c, 0)), int(n)) for c, n in deleted.items()}
