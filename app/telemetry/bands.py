"""The anomaly baselines drawn on the console's health charts: for each hour of a chart,
what the anomaly monitors (app/telemetry/anomaly.py) took as normal for the window
ending then, as a band from centre - threshold x scale to centre + threshold x scale.
A figure outside its band is what an anomaly alert fires on (the monitors also widen
the scale for a quiet window's sampling noise, which the band leaves out)."""

from __future__ import annotations

import math
import time

from app.settings import AnomalySettings
from app.store.db import Database
from app.telemetry.anomaly import AnomalyDetector, history_span
from app.telemetry.observations import Observations, SqlObservations
from app.telemetry.series import HOUR

# Signal -> (the chart series it is drawn on, whether that series is its complement:
# the charts draw the share *ungrounded*, the monitor the share grounded).
CHARTED = {
    "refusal_rate": ("refused", False),
    "grounding_rate": ("ungrounded", True),
    "thumbs_down_rate": ("down", False),
    "latency": ("seconds_p50", False),
}
Band = dict[str, float] | None


def bands(
    settings: AnomalySettings, db: Database, hours: int, now: float | None = None
) -> dict[str, list[Band]]:
    """Per charted series, per hour (as series.hourly's): {center, low, high}, or None
    where the monitor had too little history. {} with the monitors off."""
    if not settings.enabled:
        return {}
    now = time.time() if now is None else now
    end = (math.floor(now / HOUR) + 1) * HOUR
    start = end - (hours + 1) * HOUR
    source = SqlObservations(db)
    span = history_span(settings) + (hours + 1) * HOUR
    detector = AnomalyDetector(
        settings, Observations(source.answers, span), Observations(source.ratings, span)
    )
    detector.answers.update(now)
    detector.ratings.update(now)
    found: dict[str, list[Band]] = {}
    for signal in detector.signals:
        if signal.name not in CHARTED:
            continue
        series, complement = CHARTED[signal.name]
        row: list[Band] = []
        for i in range(hours + 1):
            baseline = detector.baseline(signal, min(start + (i + 1) * HOUR, now))
            if baseline is None:
                row.append(None)
                continue
            center, reach = baseline.center, settings.threshold * baseline.scale
            low, high = center - reach, center + reach
            if complement:
                center, low, high = 1 - center, 1 - high, 1 - low
            if series != "seconds_p50":  # a share stays within 0..1
                high = min(high, 1.0)
            row.append(
                {"center": round(center, 4), "low": round(max(low, 0.0), 4), "high": round(high, 4)}
            )
        found[series] = row
    return found
