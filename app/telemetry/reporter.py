"""Where the parts of docchat report: the tracer, the metrics and the alert monitors,
behind one object handed to every part that times a stage or counts an outcome."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from app.telemetry.alerts import AlertManager
from app.telemetry.metrics import Metrics


@dataclass
class Telemetry:
    """Where stages report: a span each, and a duration in the stage histogram."""

    tracer: trace.Tracer = field(default_factory=trace.NoOpTracer)
    metrics: Metrics = field(default_factory=Metrics)
    provider: TracerProvider | None = None
    alerts: AlertManager | None = None

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count a finished HTTP request in the metrics and the monitors."""
        self.metrics.http_requests.labels(route, method, str(status)).inc()
        self.metrics.http_duration.labels(route, method).observe(seconds)
        if self.alerts is not None:
            self.alerts.request_done(route, status, seconds)

    def answer_done(self, verdict: str, top_score: float | None) -> None:
        """Count a finished answer by verdict in the metrics and the monitors."""
        self.metrics.answers.labels(verdict).inc()
        if self.alerts is not None:
            self.alerts.answer_done(verdict, top_score)

    @contextmanager
    def stage(self, name: str) -> Iterator[trace.Span]:
        """Time a stage of an answer as a child span of the current request."""
        started = time.perf_counter()
        with self.tracer.start_as_current_span(name) as span:
            try:
                yield span
            finally:
                self.metrics.stage_duration.labels(name).observe(time.perf_counter() - started)

    def shutdown(self) -> None:
        """Flush and stop the span exporter."""
        if self.provider is not None:
            self.provider.shutdown()
