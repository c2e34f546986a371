"""Anomaly monitors: the signals that say the assistant is going wrong, each compared
with what is normal for this deployment at this time of day.

The signals are read back from the database (answers with their checks, ratings,
ingest runs), never from process memory: the baseline survives restarts and every
replica learns the same one. Each evaluation takes the last `window_s` seconds of a
signal (its *figure*: a share or a median) and a baseline learned from the past
`history_days` days, by one of two methods:

- ``seasonal``: the same window at the same time of day on each past day (and half a
  window either side), summarised by their median and their MAD (median absolute
  deviation, times 1.4826 so that it estimates a standard deviation).
- ``ewma``: consecutive past windows, summarised by an exponentially weighted moving
  average and variance (weight `ewma_alpha` for the newest).

The departure is z = (figure - centre) / scale, the scale never below a floor per
signal (a baseline that never moved would make any wobble an alert). A signal alerts
once when z passes `threshold` on its bad side and resolves once when it is back
within `resolve_threshold`. benchmarks/anomaly_replay.py measures both methods on
replayed traffic (docs/observability.md has the figures).

A sudden drop of a collection (documents deleted by recent ingest runs) is judged
here too: it needs no baseline.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from app.settings import AnomalySettings
from app.store.db import Database
from app.telemetry.observations import (
    SETTLE_S,
    AnswerObservation,
    Observations,
    RatingObservation,
    SqlObservations,
)

DAY = 86_400.0
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation
MEDIAN_ERROR = 1.2533  # standard error of a median, in standard errors of a mean
# Seasonal windows per past day: the same time, and half a window and a window either side.
SEASONAL_OFFSETS = (-2, -1, 0, 1, 2)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


@dataclass(frozen=True)
class Signal:
    """One figure over a window of answers or ratings, and which way is bad."""

    name: str
    description: str
    ratings: bool  # read from the ratings (else the answers)
    value: Callable[[Any], float | None]  # an observation's contribution; None: not counted
    figure: Callable[[list[float]], float]
    bad: Literal["up", "down", "both"]
    floor: float  # smallest scale, in the figure's unit
    relative_floor: float = 0.0  # smallest scale as a share of the baseline's centre

    @property
    def alert(self) -> str:
        """The name its alerts go by."""
        return f"anomaly_{self.name}"


SIGNALS: tuple[Signal, ...] = (
    Signal(
        "grounding_rate",
        "share of checked answers supported by their sources",
        False,
        lambda e: None if e.grounded is None else float(e.grounded),
        _mean,
        "down",
        0.03,
    ),
    Signal(
        "thumbs_down_rate",
        "share of ratings that are thumbs-down",
        True,
        lambda e: float(e.down),
        _mean,
        "up",
        0.03,
    ),
    Signal(
        "refusal_rate",
        "share of answers not given from the docs (no context, withheld, or replaced)",
        False,
        lambda e: float(e.refused),
        _mean,
        "up",
        0.03,
    ),
    Signal(
        "retrieval_score",
        "median cosine similarity of the best retrieved chunk",
        False,
        lambda e: e.top_score,
        statistics.median,
        "down",
        0.02,
    ),
    Signal(
        "answer_length",
        "median length of the answers given, in characters",
        False,
        lambda e: None if e.length is None else float(e.length),
        statistics.median,
        "both",
        0.0,
        0.1,
    ),
    Signal(
        "latency",
        "median seconds from question to the end of the answer",
        False,
        lambda e: e.seconds,
        statistics.median,
        "up",
        0.0,
        0.1,
    ),
)


def history_span(settings: AnomalySettings) -> float:
    """Seconds of events a baseline reads: the days, and the widest window offsets."""
    return settings.history_days * DAY + 3 * settings.window_s


@dataclass(frozen=True)
class Baseline:
    """What is normal: a centre, a scale (never below the signal's floor) and the
    number of past windows it was learned from."""

    center: float
    scale: float
    windows: int


def seasonal_baseline(figures: Sequence[float]) -> tuple[float, float]:
    """Median and scaled MAD of the past figures."""
    center = statistics.median(figures)
    mad = statistics.median(abs(x - center) for x in figures)
    return center, MAD_TO_SIGMA * mad


def ewma_baseline(figures: Sequence[float], alpha: float) -> tuple[float, float]:
    """Exponentially weighted mean and standard deviation, oldest figure first."""
    mean, variance = figures[0], 0.0
    for x in figures[1:]:
        diff = x - mean
        mean += alpha * diff
        variance = (1 - alpha) * (variance + alpha * diff * diff)
    return mean, math.sqrt(variance)


@dataclass(frozen=True)
class Judgement:
    """One signal now: its figure, the baseline, and the departure (None: too few
    events in the window, or too little history to judge)."""

    signal: Signal
    value: float | None
    events: int
    baseline: Baseline | None
    z: float | None

    @property
    def departure(self) -> float | None:
        """z on the signal's bad side (positive: worse than normal)."""
        if self.z is None:
            return None
        return {"up": self.z, "down": -self.z, "both": abs(self.z)}[self.signal.bad]


@dataclass(frozen=True)
class Change:
    """An alert to send: a signal started or stopped departing from its baseline."""

    name: str
    status: Literal["firing", "resolved"]
    value: float
    description: str
    details: dict[str, Any]


@dataclass
class AnomalyDetector:
    """Judges every signal against its baseline; says when one fires or resolves."""

    settings: AnomalySettings
    answers: Observations[AnswerObservation]
    ratings: Observations[RatingObservation]
    # Ingest's recent deletions: {collection: (documents now, documents deleted)}.
    drops: Callable[[float, float], dict[str, tuple[int, int]]] | None = None
    signals: tuple[Signal, ...] = SIGNALS
    firing: dict[str, bool] = field(default_factory=dict)
    _figures: dict[tuple[str, float], tuple[float | None, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [s.alert for s in self.signals] + (["documents_drop"] if self.drops else [])
        for name in names:  # every monitor reports its state from the start
            self.firing.setdefault(name, False)

    @classmethod
    def from_database(cls, settings: AnomalySettings, db: Database) -> AnomalyDetector:
        """A detector reading the answers, ratings and ingest runs in the database."""
        source = SqlObservations(db)
        span = history_span(settings)
        return cls(
            settings,
            Observations(source.answers, span),
            Observations(source.ratings, span),
            source.drops,
        )

    def figure(self, signal: Signal, end: float, now: float) -> tuple[float | None, int]:
        """The signal's figure over the window ending at `end`, and how many events it
        holds (None: fewer than min_events). Settled windows are remembered."""
        key = (signal.name, end)
        if key in self._figures:
            return self._figures[key]
        source = self.ratings if signal.ratings else self.answers
        events: list[Any] = source.between(end - self.settings.window_s, end)
        values = [v for v in map(signal.value, events) if v is not None]
        found = (
            signal.figure(values) if len(values) >= self.settings.min_events else None,
            len(values),
        )
        if end <= now - SETTLE_S:
            self._figures[key] = found
        return found

    def baseline(self, signal: Signal, now: float) -> Baseline | None:
        """What is normal for the signal at `now`, or None while there is too little
        history (fewer than min_baseline_windows past windows with enough events)."""
        s = self.settings
        if s.method == "seasonal":
            step = s.window_s / 2
            base = math.floor(now / step) * step
            ends = [
                base - day * DAY + offset * step
                for day in range(1, s.history_days + 1)
                for offset in SEASONAL_OFFSETS
            ]
        else:
            last = math.floor((now - s.window_s) / s.window_s) * s.window_s
            count = int(s.history_days * DAY // s.window_s)
            ends = [last - k * s.window_s for k in range(count - 1, -1, -1)]
        figures = [f for f in (self.figure(signal, end, now)[0] for end in ends) if f is not None]
        if len(figures) < s.min_baseline_windows:
            return None
        if s.method == "seasonal":
            center, spread = seasonal_baseline(figures)
        else:
            center, spread = ewma_baseline(figures, s.ewma_alpha)
        scale = max(spread, signal.floor, signal.relative_floor * abs(center), 1e-9)
        return Baseline(center, scale, len(figures))

    def judge(self, now: float) -> list[Judgement]:
        """Every signal now (after reading what is new)."""
        self.answers.update(now)
        self.ratings.update(now)
        self._forget(now)
        found = []
        for signal in self.signals:
            value, events = self.figure(signal, now, now)
            baseline = self.baseline(signal, now) if value is not None else None
            z = None
            if value is not None and baseline is not None:
                noise = self._sampling_error(signal, baseline.center, now)
                baseline = replace(baseline, scale=max(baseline.scale, noise))
                z = (value - baseline.center) / baseline.scale
            found.append(Judgement(signal, value, events, baseline, z))
        return found

    def _sampling_error(self, signal: Signal, center: float, now: float) -> float:
        """The standard error of the current window's figure from its few events alone:
        a quiet hour (a night, a weekend) is noisier than the busy ones that dominate
        the baseline, and must not alert for that."""
        source = self.ratings if signal.ratings else self.answers
        events: list[Any] = source.between(now - self.settings.window_s, now)
        values = [v for v in map(signal.value, events) if v is not None]
        n = len(values)
        if signal.figure is _mean:  # a share: binomial error at the normal rate
            p = min(max(center, 0.01), 0.99)
            return math.sqrt(p * (1 - p) / n)
        middle = statistics.median(values)  # a median: from the window's own spread
        mad = statistics.median(abs(v - middle) for v in values)
        return MEDIAN_ERROR * MAD_TO_SIGMA * mad / math.sqrt(n)

    def evaluate(self, now: float) -> list[Change]:
        """The alerts due now: a signal that crossed `threshold` fires once, and
        resolves once when it is back within `resolve_threshold`. A signal without a
        verdict (too few events or too little history) keeps its state."""
        s = self.settings
        changes = []
        for judgement in self.judge(now):
            departure = judgement.departure
            name = judgement.signal.alert
            if departure is None:
                continue
            firing = self.firing.get(name, False)
            if not firing and departure > s.threshold:
                self.firing[name] = True
                changes.append(self._change(judgement, "firing"))
            elif firing and departure < s.resolve_threshold:
                self.firing[name] = False
                changes.append(self._change(judgement, "resolved"))
        if self.drops is not None:
            changes += self._judge_drops(now)
        return changes

    def _change(self, judgement: Judgement, status: Literal["firing", "resolved"]) -> Change:
        s = self.settings
        signal, baseline = judgement.signal, judgement.baseline
        assert judgement.value is not None
        assert baseline is not None
        assert judgement.z is not None
        how = (
            f"the same time of day on the last {s.history_days} days (median and MAD)"
            if s.method == "seasonal"
            else f"the past {s.history_days} days (EWMA, alpha {s.ewma_alpha:g})"
        )
        minutes = s.window_s / 60
        description = (
            f"{signal.name}: {signal.description} was {judgement.value:.3g} over the last "
            f"{minutes:g} min ({judgement.events} events); normal is "
            f"{baseline.center:.3g} ± {baseline.scale:.2g}, learned from {how}; "
            f"z = {judgement.z:+.1f}"
        )
        edge = s.threshold * baseline.scale
        below = signal.bad == "down" or (signal.bad == "both" and judgement.z < 0)
        return Change(
            signal.alert,
            status,
            judgement.value,
            description,
            {
                "signal": signal.name,
                "baseline": round(baseline.center, 4),
                "scale": round(baseline.scale, 4),
                "z": round(judgement.z, 2),
                "threshold": round(baseline.center + (-edge if below else edge), 4),
                "condition": "below" if below else "above",
                "method": s.method,
                "history_days": s.history_days,
                "baseline_windows": baseline.windows,
                "events": judgement.events,
            },
        )

    def _judge_drops(self, now: float) -> list[Change]:
        """documents_drop: recent ingest runs deleted more than drop_share of a
        collection (what it held before them)."""
        assert self.drops is not None
        s = self.settings
        worst: tuple[float, str, int, int] | None = None
        for collection, (documents, deleted) in self.drops(now - s.drop_window_s, now).items():
            before = documents + deleted
            share = deleted / before if before else 0.0
            if worst is None or share > worst[0]:
                worst = (share, collection, documents, deleted)
        share, collection, documents, deleted = worst or (0.0, "", 0, 0)
        firing = self.firing.get("documents_drop", False)
        if firing == (share > s.drop_share):
            return []
        self.firing["documents_drop"] = not firing
        description = (
            f"ingest runs of the last {s.drop_window_s / 60:g} min deleted {deleted} of the "
            f"{documents + deleted} documents of collection {collection!r} ({share:.0%}; "
            f"alerting above {s.drop_share:.0%})"
            if collection
            else "no collection lost more than its share of documents"
        )
        return [
            Change(
                "documents_drop",
                "resolved" if firing else "firing",
                round(share, 4),
                description,
                {
                    "collection": collection,
                    "deleted": deleted,
                    "documents": documents,
                    "threshold": s.drop_share,
                    "condition": "above",
                    "window_s": s.drop_window_s,
                },
            )
        ]

    def _forget(self, now: float) -> None:
        oldest = now - history_span(self.settings)
        if len(self._figures) > 4096:
            self._figures = {k: v for k, v in self._figures.items() if k[1] >= oldest}
