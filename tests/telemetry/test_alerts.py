"""Alerts: rolling windows, webhooks with retries, one alert per problem, resolution —
delivered to a real HTTP receiver on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.components import Components, build_telemetry
from app.main import create_app
from app.settings import AlertSettings
from app.telemetry.alerts import AlertManager, WebhookSender


class Receiver:
    """A webhook endpoint that records what it receives and can fail on purpose."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, Any], str]] = []
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_next:
                    receiver.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append((json.loads(body), self.headers.get("Authorization", "")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for_message(self, alert: str, status: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for payload, _ in list(self.received):
                if (payload["alert"], payload["status"]) == (alert, status):
                    return payload
            assert time.monotonic() < deadline, f"no {alert} {status} in {self.received}"
            time.sleep(0.05)

    def wait_for(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"got {self.received}"
            time.sleep(0.05)
        return [payload for payload, _ in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_alert_per_problem_then_resolved(receiver: Receiver) -> None:
    settings = AlertSettings(webhooks=[receiver.url], min_events=4, window_s=60, cooldown_s=300)
    clock = Clock()
    manager = AlertManager(
        settings,
        WebhookSender([receiver.url], "hook-token", retries=2, base_delay=0.01),
        clock=clock,
    )

    async def scenario() -> list[list[dict[str, Any]]]:
        rounds = []
        for _ in range(4):
            manager.request_done("/api/chat", 500, 1.0)
        rounds.append(await manager.evaluate())  # fires
        for _ in range(4):
            manager.request_done("/api/chat", 500, 1.0)
        rounds.append(await manager.evaluate())  # still firing: nothing new
        clock.now += 61  # the failures leave the window
        for _ in range(6):
            manager.request_done("/api/chat", 200, 1.0)
        rounds.append(await manager.evaluate())  # resolved
        clock.now += 10
        for _ in range(10):
            manager.request_done("/api/chat", 500, 1.0)
        rounds.append(await manager.evaluate())  # fires again, but inside the cooldown
        await manager.drain()
        return rounds

    rounds = asyncio.run(scenario())
    assert [[p["status"] for p in r] for r in rounds] == [["firing"], [], ["resolved"], []]
    # Deliveries run in the background: they may arrive in either order.
    payloads = sorted(receiver.wait_for(2), key=lambda p: p["status"])
    assert [(p["alert"], p["status"]) for p in payloads] == [
        ("error_rate", "firing"),
        ("error_rate", "resolved"),
    ]
    assert payloads[0]["value"] == 1.0
    assert payloads[0]["threshold"] == 0.05
    assert {auth for _, auth in receiver.received} == {"Bearer hook-token"}


def test_failed_delivery_is_retried(receiver: Receiver) -> None:
    receiver.fail_next = 2
    sender = WebhookSender([receiver.url], None, retries=3, base_delay=0.01)
    asyncio.run(sender.send({"alert": "x", "status": "firing"}))
    assert receiver.wait_for(1) == [{"alert": "x", "status": "firing"}]


def test_quiet_windows_do_not_alert() -> None:
    manager = AlertManager(AlertSettings(min_events=10), None, clock=Clock())
    for _ in range(5):  # too few events to judge
        manager.request_done("/api/chat", 500, 1.0)
    assert asyncio.run(manager.evaluate()) == []


def test_the_running_app_alerts_on_questions_the_docs_do_not_cover(
    components: Components, receiver: Receiver
) -> None:
    """End to end: real questions, real model, the monitor loop, a real receiver."""
    alerts = components.settings.alerts.model_copy(
        update={"webhooks": [receiver.url], "min_events": 3, "check_interval_s": 0.2}
    )
    settings = components.settings.model_copy(update={"alerts": alerts})
    telemetry = build_telemetry(settings, components.db, components.engine)
    app = create_app(settings, components.using(settings=settings, telemetry=telemetry))
    with TestClient(app) as client:
        for question in (
            "Who painted the Mona Lisa?",
            "What is the capital of Peru?",
            "How tall is Everest?",
        ):
            body = client.post("/api/chat", json={"question": question, "stream": False}).json()
            assert body["answered_from_docs"] is False
        firing = receiver.wait_for_message("no_context_rate", "firing")
        assert firing["value"] == 1.0
        metrics = client.get("/metrics").text
        assert 'docchat_alerts_firing{alert="no_context_rate"} 1.0' in metrics
        for _ in range(4):
            client.post(
                "/api/chat",
                json={"question": "What port does the widget server listen on?", "stream": False},
            )
        resolved = receiver.wait_for_message("no_context_rate", "resolved")
        assert resolved["value"] <= resolved["threshold"]
    sent = [(p["alert"], p["status"]) for p, _ in receiver.received]
    assert sent.count(("no_context_rate", "firing")) == 1  # one problem, one alert
