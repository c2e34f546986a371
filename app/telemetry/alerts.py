"""Rolling-window monitors over requests and answers, and the webhooks they alert.

Each monitor compares one figure of the last `window_s` seconds with its threshold.
When it crosses, one alert is sent (then nothing for `cooldown_s`, so one problem is
one alert); when it clears, a "resolved" message follows. Deliveries are retried with
exponential back-off and never block a request.

Beside these fixed thresholds, the anomaly monitors (app/telemetry/anomaly.py) judge
signals against baselines learned from the database, every
`anomalies.check_interval_s`; their alerts go out through the same webhooks.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from app.security.secrets import masked_url
from app.settings import AlertSettings
from app.telemetry.anomaly import AnomalyDetector, Change

log = logging.getLogger(__name__)
CHAT_ROUTES = frozenset({"/api/chat", "/v1/chat/completions"})


@dataclass
class Window:
    """(time, value) events of the last `seconds`."""

    seconds: float
    events: deque[tuple[float, float]] = field(default_factory=deque)

    def add(self, now: float, value: float) -> None:
        """Record one event."""
        self.events.append((now, value))

    def values(self, now: float) -> list[float]:
        """The values still inside the window."""
        while self.events and self.events[0][0] < now - self.seconds:
            self.events.popleft()
        return [v for _, v in self.events]


@dataclass
class Monitor:
    """One condition: a figure over a window, compared with a threshold."""

    name: str
    description: str
    window: Window
    figure: Callable[[list[float]], float]
    threshold: float
    above: bool  # alert when the figure is above (True) or below (False) the threshold
    firing: bool = False
    last_sent: float = -math.inf

    def check(self, now: float, min_events: int) -> float | None:
        """The figure now, or None while the window holds too few events to judge."""
        values = self.window.values(now)
        return self.figure(values) if len(values) >= min_events else None

    def crossed(self, value: float) -> bool:
        """Whether the figure is on the alerting side of the threshold."""
        return value > self.threshold if self.above else value < self.threshold


def _share(values: list[float]) -> float:
    return sum(values) / len(values)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Webhook:
    """One destination: the URL without credentials, its Basic auth if the URL had
    user:password@, and the masked form that is the only one ever logged."""

    url: str
    auth: httpx.Auth
    label: str

    @classmethod
    def parse(cls, url: str) -> Webhook:
        """Split the credentials out of a webhook URL."""
        parts = urlsplit(url)
        auth = httpx.Auth()  # sends nothing
        if parts.username is not None or parts.password is not None:
            auth = httpx.BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))
        bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        return cls(bare, auth, masked_url(url))


class WebhookSender:
    """POSTs alert payloads as JSON, retrying failures with exponential back-off.

    A URL's own credentials (user:password@) are sent as Basic auth to it; otherwise
    the token, if any, as a Bearer header. Both at once is refused: a request carries
    one Authorization header, and one of them would be dropped unseen.
    """

    def __init__(
        self, urls: list[str], token: str | None, *, retries: int, base_delay: float = 0.5
    ) -> None:
        self.urls = urls
        self.hooks = [Webhook.parse(url) for url in urls]
        if token and any(isinstance(hook.auth, httpx.BasicAuth) for hook in self.hooks):
            raise ValueError("a webhook URL with credentials cannot be combined with a token")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.retries = retries
        self.base_delay = base_delay

    async def send(self, payload: dict[str, Any]) -> None:
        """Deliver to every URL; a URL that keeps failing is logged, never raised."""
        async with httpx.AsyncClient(timeout=10) as client:
            for hook in self.hooks:
                for attempt in range(self.retries + 1):
                    try:
                        response = await client.post(
                            hook.url, json=payload, headers=self.headers, auth=hook.auth
                        )
                        if response.status_code < 500:
                            break
                        problem = f"HTTP {response.status_code}"
                    except httpx.HTTPError as exc:
                        problem = type(exc).__name__  # its text would quote the URL
                    if attempt == self.retries:
                        log.error(
                            "alert %s not delivered to %s: %s",
                            payload["alert"],
                            hook.label,
                            problem,
                        )
                    else:
                        await asyncio.sleep(self.base_delay * 2**attempt)


class AlertManager:
    """Feeds the monitors and sends their alerts."""

    def __init__(
        self,
        settings: AlertSettings,
        sender: WebhookSender | None,
        *,
        on_state: Callable[[str, bool], None] = lambda _name, _firing: None,
        clock: Callable[[], float] = time.monotonic,
        anomalies: AnomalyDetector | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sender = sender
        self.on_state = on_state
        self.clock = clock
        self.anomalies = anomalies
        self.wall_clock = wall_clock  # the anomaly monitors read the database by dates
        self._anomalies_checked = -math.inf
        window = settings.window_s

        def monitor(
            name: str,
            description: str,
            figure: Callable[[list[float]], float],
            threshold: float,
            above: bool = True,
        ) -> Monitor:
            return Monitor(name, description, Window(window), figure, threshold, above)

        self.errors = monitor(
            "error_rate", "share of requests answered with a 5xx", _share, settings.error_rate
        )
        self.latency = monitor(
            "latency_p95", "95th percentile of chat request seconds", _p95, settings.latency_p95_s
        )
        self.ungrounded = monitor(
            "ungrounded_rate",
            "share of answers not supported by their sources",
            _share,
            settings.ungrounded_rate,
        )
        self.no_context = monitor(
            "no_context_rate",
            "share of questions the docs did not cover",
            _share,
            settings.no_context_rate,
        )
        self.retrieval = monitor(
            "retrieval_score",
            "mean top retrieval score",
            _share,
            settings.min_retrieval_score,
            above=False,
        )
        self.monitors = [
            self.errors,
            self.latency,
            self.ungrounded,
            self.no_context,
            self.retrieval,
        ]
        self._tasks: set[asyncio.Task[None]] = set()
        # The latest alerts sent (firing and resolved), newest last: the console shows
        # them without Prometheus or a webhook receiver (this replica's only).
        self.recent: deque[dict[str, Any]] = deque(maxlen=200)

    def request_done(self, route: str, status: int, seconds: float) -> None:
        """Count a finished request (probes and metrics scrapes are not traffic)."""
        if route in ("/healthz", "/readyz", "/metrics"):
            return
        now = self.clock()
        self.errors.window.add(now, 1.0 if status >= 500 else 0.0)
        if route in CHAT_ROUTES and status < 400:
            self.latency.window.add(now, seconds)

    def answer_done(self, verdict: str, top_score: float | None) -> None:
        """Count a finished answer by its verdict, and its best retrieval score."""
        now = self.clock()
        if verdict in ("grounded", "ungrounded"):
            self.ungrounded.window.add(now, 1.0 if verdict == "ungrounded" else 0.0)
        if verdict in ("grounded", "ungrounded", "no_context", "blocked"):
            self.no_context.window.add(now, 1.0 if verdict == "no_context" else 0.0)
        if top_score is not None:
            self.retrieval.window.add(now, top_score)

    async def evaluate(self) -> list[dict[str, Any]]:
        """Check every monitor; send (in the background) and return the messages due."""
        now = self.clock()
        due = []
        for monitor in self.monitors:
            value = monitor.check(now, self.settings.min_events)
            if value is None:
                continue
            crossed = monitor.crossed(value)
            if crossed and not monitor.firing:
                monitor.firing = True
                if now - monitor.last_sent >= self.settings.cooldown_s:
                    monitor.last_sent = now
                    due.append(self._payload(monitor, "firing", value))
            elif not crossed and monitor.firing:
                monitor.firing = False
                due.append(self._payload(monitor, "resolved", value))
            self.on_state(monitor.name, monitor.firing)
        self._send(due)
        if self.anomalies is not None and (
            now - self._anomalies_checked >= self.anomalies.settings.check_interval_s
        ):
            self._anomalies_checked = now
            due += await self.check_anomalies()
        return due

    async def check_anomalies(self, at: float | None = None) -> list[dict[str, Any]]:
        """Judge the anomaly monitors at `at` (epoch seconds; default: now); send (in the
        background) and return the messages due."""
        if self.anomalies is None:
            return []
        detector = self.anomalies
        when = self.wall_clock() if at is None else at
        changes = await asyncio.to_thread(detector.evaluate, when)
        for name, firing in detector.firing.items():
            self.on_state(name, firing)
        due = [self._anomaly_payload(change, when) for change in changes]
        self._send(due)
        return due

    def firing(self) -> list[str]:
        """The names of the threshold monitors firing now."""
        return [m.name for m in self.monitors if m.firing]

    def _send(self, due: list[dict[str, Any]]) -> None:
        for payload in due:
            self.recent.append(payload)
            log.warning(
                "alert %s %s", payload["alert"], payload["status"], extra={"alert": payload}
            )
            if self.sender is not None and self.sender.urls:
                task = asyncio.create_task(self.sender.send(payload))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _anomaly_payload(self, change: Change, when: float) -> dict[str, Any]:
        assert self.anomalies is not None
        return {
            "service": "docchat",
            "alert": change.name,
            "status": change.status,
            "value": round(change.value, 4),
            "window_s": self.anomalies.settings.window_s,
            **change.details,
            "description": change.description,
            "time": datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds"),
        }

    def _payload(self, monitor: Monitor, status: str, value: float) -> dict[str, Any]:
        return {
            "service": "docchat",
            "alert": monitor.name,
            "status": status,
            "value": round(value, 4),
            "threshold": monitor.threshold,
            "condition": "above" if monitor.above else "below",
            "window_s": self.settings.window_s,
            "description": monitor.description,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    async def run(self) -> None:
        """Evaluate every `check_interval_s` until cancelled."""
        while True:
            await asyncio.sleep(self.settings.check_interval_s)
            try:
                await self.evaluate()
            except Exception:
                log.exception("alert evaluation failed")

    async def drain(self) -> None:
        """Wait for deliveries still under way (at shutdown)."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=15)
