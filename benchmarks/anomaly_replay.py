"""Replay synthetic traffic through the anomaly monitors and measure each method.

    .venv/bin/python benchmarks/anomaly_replay.py [--days 28] [--seeds 1,2,3,4,5]
        [--thresholds 3,4,5] [--json out.json]

The traffic is generated, not recorded, but shaped like a company's documentation
assistant: a daily cycle (a morning and an afternoon peak, quiet nights, weekends at a
third), Poisson arrivals, per-answer noise and a little day-to-day drift in quality.
Latency rises with load. Then, after two weeks of learning, three incidents are
injected, each lasting a few hours:

- ``grounding``: the model stops grounding (grounded answers 82% -> 45%);
- ``thumbs_down``: a flood of thumbs-down (18% -> 55% of ratings);
- ``latency``: a latency regression (every answer twice as slow).

Both methods of app/telemetry/anomaly.py (seasonal median + MAD, EWMA + z) judge the
same replay every 5 minutes, through the same code the server runs (only the events
come from memory instead of SQL), at several thresholds, over several seeds (each a
different replay). For each it reports, over the seeds:

- detection delay: from an incident's start to the first alert on its signal (the
  median over the seeds; "missed n" when n replays had no alert on its signal before
  it ended plus one window);
- early resolves: replays in which the alert resolved while the incident went on;
- false alerts per day: alerts outside the incidents (and one window after), over the
  judged days of all seeds.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.settings import AnomalySettings
from app.telemetry.anomaly import DAY, AnomalyDetector, history_span
from app.telemetry.observations import AnswerObservation, Observations, RatingObservation

HOUR = 3600.0
EPOCH = 1_700_000_000.0 - 1_700_000_000.0 % DAY  # a midnight (UTC), a Tuesday


@dataclass(frozen=True)
class Incident:
    name: str
    signals: frozenset[str]  # alerts it may rightly cause; the first is its own
    primary: str
    day: int
    start_hour: float
    hours: float

    @property
    def start(self) -> float:
        return EPOCH + self.day * DAY + self.start_hour * HOUR

    @property
    def end(self) -> float:
        return self.start + self.hours * HOUR


def incidents(days: int) -> list[Incident]:
    """Three incidents spread over the judged part (the last half of the days)."""
    first = days // 2
    return [
        Incident(
            "grounding",
            frozenset({"anomaly_grounding_rate", "anomaly_thumbs_down_rate"}),
            "anomaly_grounding_rate",
            first + 2,
            10.0,
            4.0,
        ),
        Incident(
            "thumbs_down",
            frozenset({"anomaly_thumbs_down_rate"}),
            "anomaly_thumbs_down_rate",
            first + 6,
            13.5,
            3.0,
        ),
        Incident(
            "latency",
            frozenset({"anomaly_latency"}),
            "anomaly_latency",
            first + 9,
            9.0,
            4.0,
        ),
    ]


def load(t: float) -> float:
    """Traffic at time t relative to a weekday's peak (0..1)."""
    day = int((t - EPOCH) // DAY)
    hour = (t - EPOCH) % DAY / HOUR
    weekday = (day + 1) % 7 < 5  # EPOCH is a Tuesday: day 0 -> index 1
    shape = 0.04 + 0.96 * max(
        math.exp(-(((hour - 10.5) / 1.8) ** 2)), 0.85 * math.exp(-(((hour - 15.0) / 2.0) ** 2))
    )
    return shape * (1.0 if weekday else 0.33)


def generate(
    days: int, seed: int, shifts: list[Incident], peak_per_hour: float = 240.0
) -> tuple[list[AnswerObservation], list[RatingObservation]]:
    """Answers and ratings of `days` days, with the incidents injected."""
    rng = random.Random(seed)
    drift = [rng.gauss(0, 0.02) for _ in range(days)]
    answers: list[AnswerObservation] = []
    ratings: list[RatingObservation] = []
    t = EPOCH
    end = EPOCH + days * DAY
    while True:
        # Thinning of a Poisson process with the peak rate.
        t += rng.expovariate(peak_per_hour / HOUR)
        if t >= end:
            break
        level = load(t)
        if rng.random() > level:
            continue
        active = {i.name for i in shifts if i.start <= t < i.end}
        day = int((t - EPOCH) // DAY)
        refused = rng.random() < 0.12
        p_grounded = 0.82 + drift[day]
        if "grounding" in active:
            p_grounded = 0.45
        grounded = None if refused else rng.random() < p_grounded
        score = None if refused else min(0.95, max(0.3, rng.gauss(0.62 + drift[day] / 2, 0.08)))
        length = None if refused else int(rng.lognormvariate(math.log(650), 0.45))
        seconds = (3.0 + 6.0 * level**2) * rng.lognormvariate(0, 0.3)
        if "latency" in active:
            seconds *= 2.0
        answers.append(AnswerObservation(t, grounded, refused, score, length, round(seconds, 3)))
        if rng.random() < 0.15:  # a rating, a little later
            p_down = 0.55 if "thumbs_down" in active else (0.45 if grounded is False else 0.12)
            ratings.append(RatingObservation(t + rng.uniform(5, 120), rng.random() < p_down))
    ratings.sort(key=lambda r: r.at)
    return answers, ratings


def fetcher(events: list[Any]) -> Any:
    times = [e.at for e in events]

    def fetch(start: float, end: float) -> list[Any]:
        return events[bisect.bisect_left(times, start) : bisect.bisect_left(times, end)]

    return fetch


def replay(
    settings: AnomalySettings,
    answers: list[AnswerObservation],
    ratings: list[RatingObservation],
    judged_from: float,
    until: float,
    step: float = 300.0,
) -> list[tuple[float, str, str]]:
    """(time, alert, status) of every change, judging every `step` seconds."""
    span = history_span(settings)
    detector = AnomalyDetector(
        settings, Observations(fetcher(answers), span), Observations(fetcher(ratings), span)
    )
    changes = []
    t = judged_from
    while t < until:
        for change in detector.evaluate(t):
            changes.append((t, change.name, change.status))
        t += step
    return changes


def score(
    changes: list[tuple[float, str, str]],
    shifts: list[Incident],
    window_s: float,
    judged_days: float,
) -> dict[str, Any]:
    """Detection delay per incident, misses, early resolves, false alerts per day."""
    fired = [(t, name) for t, name, status in changes if status == "firing"]
    resolved = [(t, name) for t, name, status in changes if status == "resolved"]
    result: dict[str, Any] = {"incidents": {}}
    explained = set()
    for incident in shifts:
        grace = incident.end + window_s
        own = [t for t, name in fired if name == incident.primary and incident.start <= t < grace]
        for t, name in fired:
            if name in incident.signals and incident.start <= t < grace:
                explained.add((t, name))
        delay = (own[0] - incident.start) / 60 if own else None
        early = bool(
            own
            and any(name == incident.primary and own[0] < t < incident.end for t, name in resolved)
        )
        result["incidents"][incident.name] = {"delay_min": delay, "early_resolve": early}
    false = [f for f in fired if f not in explained]
    result["false_alerts"] = len(false)
    result["false_per_day"] = round(len(false) / judged_days, 2)
    result["false_by_signal"] = {}
    for _, name in false:
        result["false_by_signal"][name] = result["false_by_signal"].get(name, 0) + 1
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--thresholds", default="3,4,5")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    shifts = incidents(args.days)
    judged_from = EPOCH + (args.days // 2) * DAY
    until = EPOCH + args.days * DAY
    judged_days = (until - judged_from) / DAY
    seeds = [int(x) for x in args.seeds.split(",")]
    configs = [
        AnomalySettings(method=method, threshold=t, resolve_threshold=min(2.0, t))
        for method in ("seasonal", "ewma")
        for t in (float(x) for x in args.thresholds.split(","))
    ]
    runs: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for seed in seeds:
        answers, ratings = generate(args.days, seed, shifts)
        print(
            f"seed {seed}: {len(answers)} answers, {len(ratings)} ratings over {args.days} "
            f"days; judged every 5 min over the last {judged_days:g}",
            file=sys.stderr,
        )
        for settings in configs:
            began = time.perf_counter()
            changes = replay(settings, answers, ratings, judged_from, until)
            found = score(changes, shifts, settings.window_s, judged_days)
            found["seconds"] = round(time.perf_counter() - began, 1)
            runs.setdefault((settings.method, settings.threshold), []).append(found)

    names = [i.name for i in shifts]
    header = ["method", "z >"] + [f"{n}: delay (min)" for n in names] + ["false alerts / day"]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    rows = []
    for (method, threshold), found in runs.items():
        cells = [method, f"{threshold:g}"]
        row: dict[str, Any] = {"method": method, "threshold": threshold, "runs": found}
        for name in names:
            delays = [f["incidents"][name]["delay_min"] for f in found]
            seen = sorted(d for d in delays if d is not None)
            missed = len(delays) - len(seen)
            early = sum(f["incidents"][name]["early_resolve"] for f in found)
            cell = f"{seen[len(seen) // 2]:.0f}" if seen else "-"
            notes = [f"missed {missed}"] * bool(missed) + [f"resolved early {early}"] * bool(early)
            cells.append(cell + (f" ({', '.join(notes)})" if notes else ""))
        false: dict[str, int] = {}
        for f in found:
            for k, v in f["false_by_signal"].items():
                false[k] = false.get(k, 0) + v
        per_day = sum(false.values()) / (judged_days * len(found))
        row["false_per_day"] = per_day
        detail = ", ".join(f"{k.removeprefix('anomaly_')} {v}" for k, v in sorted(false.items()))
        cells.append(f"{per_day:.2f}" + (f" ({detail})" if detail else ""))
        print("| " + " | ".join(cells) + " |")
        rows.append(row)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
