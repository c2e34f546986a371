"""Judging a report: against fixed thresholds (`--min-…` options), or against the report
of the model in service (the promotion gate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Figures where more is better and where less is better.
HIGHER = (
    "expected",
    "grounded",
    "cited",
    "refused_out_of_scope",
    "recall",
    "mrr",
    "labels_wrong_flagged",  # the grounding check on a set's hand labels
)
LOWER = ("false_refusals", "errors", "total_p95_s", "first_token_p95_s", "labels_right_flagged")
LATENCY = ("total_p95_s", "first_token_p95_s")


@dataclass(frozen=True)
class Limit:
    """A figure's bound: at least `minimum` or at most `maximum`."""

    figure: str
    minimum: float | None = None
    maximum: float | None = None


def failures(report: dict[str, Any], limits: list[Limit]) -> list[str]:
    """Each limit the report misses, in words (empty: all met)."""
    missed = []
    for limit in limits:
        value = float(report[limit.figure])
        if limit.minimum is not None and value < limit.minimum:
            missed.append(f"{limit.figure} {value:g} is below {limit.minimum:g}")
        if limit.maximum is not None and value > limit.maximum:
            missed.append(f"{limit.figure} {value:g} is above {limit.maximum:g}")
    return missed


def regressions(
    candidate: dict[str, Any],
    baseline: dict[str, Any],
    *,
    tolerance: float,
    latency_ratio: float | None,
) -> list[str]:
    """Where a candidate does worse than the baseline by more than the tolerance
    (quality figures, absolute) or the latency ratio (time figures, relative)."""
    worse = []
    for figure in HIGHER:
        old, new = baseline.get(figure), candidate.get(figure)
        if old is not None and new is not None and new < old - tolerance:
            worse.append(f"{figure} fell from {old:g} to {new:g}")
    for figure in ("false_refusals", "labels_right_flagged"):
        old, new = baseline.get(figure), candidate.get(figure)
        if old is not None and new is not None and new > old + tolerance:
            worse.append(f"{figure} rose from {old:g} to {new:g}")
    if (candidate.get("errors") or 0) > (baseline.get("errors") or 0):
        worse.append(f"errors rose from {baseline.get('errors', 0)} to {candidate['errors']}")
    if latency_ratio is not None:
        for figure in LATENCY:
            old, new = baseline.get(figure), candidate.get(figure)
            if old and new and new > old * latency_ratio:
                worse.append(f"{figure} rose from {old:g} s to {new:g} s")
    return worse
