"""Anomaly monitors on real SQLite rows: days of normal traffic, then a shift (a model
that stops grounding; a flood of thumbs-down): exactly one alert fires, through the
webhooks, and then resolves once. The detector is driven by an explicit clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.components import open_database
from app.settings import AlertSettings, AnomalySettings
from app.store.db import Database
from app.store.models import Conversation, Feedback, IngestRun, Message
from app.telemetry.alerts import AlertManager, WebhookSender
from app.telemetry.anomaly import AnomalyDetector, SqlObservations
from tests.conftest import make_settings
from tests.telemetry.test_alerts import Receiver

DAY0 = datetime(2025, 3, 3, tzinfo=UTC)  # the first day of history
HISTORY_DAYS = 3
TODAY = DAY0 + timedelta(days=HISTORY_DAYS)
SHIFT = (TODAY + timedelta(hours=10), TODAY + timedelta(hours=13))
PER_HOUR = 60


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(make_settings(tmp_path / "data"))
    yield database
    database.close()


def traffic(db: Database, shift: str, seed: int = 3) -> None:
    """HISTORY_DAYS days and one more of answers (60 an hour) and ratings (40% of
    answers), with `shift` ("grounding" or "thumbs_down") during SHIFT."""
    rng = random.Random(seed)
    end = TODAY + timedelta(days=1)
    with db.session() as session:
        for day in range(HISTORY_DAYS + 1):
            conversation = Conversation(title=f"day {day}", created_at=DAY0 + timedelta(days=day))
            session.add(conversation)
            session.flush()
            at = DAY0 + timedelta(days=day)
            seq = 0
            while True:
                at += timedelta(seconds=rng.expovariate(PER_HOUR / 3600))
                if at >= min(end, DAY0 + timedelta(days=day + 1)):
                    break
                shifted = SHIFT[0] <= at < SHIFT[1]
                refused = rng.random() < 0.1
                p_grounded = 0.3 if shifted and shift == "grounding" else 0.85
                checks: dict[str, Any] = {"seconds": round(rng.lognormvariate(1.3, 0.3), 3)}
                if not refused:
                    checks["retrieval_score"] = round(rng.gauss(0.62, 0.06), 4)
                    checks["grounded"] = rng.random() < p_grounded
                    checks["grounding_score"] = 0.9 if checks["grounded"] else 0.2
                words = rng.randint(60, 140)
                message = Message(
                    conversation_id=conversation.id,
                    seq=seq,
                    role="assistant",
                    content="The docs say so. " * (3 if refused else words // 3),
                    status="complete",
                    answered_from_docs=not refused,
                    checks=checks,
                    created_at=at,
                )
                seq += 1
                session.add(message)
                if rng.random() < 0.4:
                    session.flush()
                    p_down = 0.7 if shifted and shift == "thumbs_down" else 0.12
                    session.add(
                        Feedback(
                            message_id=message.id,
                            rating=-1 if rng.random() < p_down else 1,
                            created_at=at + timedelta(seconds=rng.uniform(5, 90)),
                        )
                    )


SETTINGS = AnomalySettings(history_days=HISTORY_DAYS, min_baseline_windows=8)


def manager_for(db: Database, receiver: Receiver) -> AlertManager:
    return AlertManager(
        AlertSettings(webhooks=[receiver.url]),
        WebhookSender([receiver.url], None, retries=1, base_delay=0.01),
        anomalies=AnomalyDetector.from_database(SETTINGS, db),
    )


@pytest.mark.parametrize(
    ("shift", "alert"),
    [("grounding", "anomaly_grounding_rate"), ("thumbs_down", "anomaly_thumbs_down_rate")],
)
def test_a_shift_fires_one_alert_then_resolves(
    db: Database, receiver: Receiver, shift: str, alert: str
) -> None:
    traffic(db, shift)
    manager = manager_for(db, receiver)

    async def replay() -> list[tuple[datetime, dict[str, Any]]]:
        sent = []
        at = TODAY
        while at < TODAY + timedelta(hours=18):  # every 10 minutes of the last day
            for payload in await manager.check_anomalies(at=at.timestamp()):
                sent.append((at, payload))
            at += timedelta(minutes=10)
        await manager.drain()
        return sent

    sent = asyncio.run(replay())
    assert [(p["alert"], p["status"]) for _, p in sent] == [
        (alert, "firing"),
        (alert, "resolved"),
    ], "a normal day must not alert, and the shift must alert exactly once"
    (fired, firing), (resolved, resolution) = sent
    # Within the first window of the shift, resolved within a window after it ended.
    assert SHIFT[0] < fired <= SHIFT[0] + timedelta(hours=1)
    assert SHIFT[1] < resolved <= SHIFT[1] + timedelta(hours=2)

    # The alert names the signal, the baseline and the window.
    assert firing["signal"] == alert.removeprefix("anomaly_")
    assert firing["window_s"] == 3600
    assert firing["method"] == "seasonal"
    assert firing["history_days"] == HISTORY_DAYS
    assert firing["baseline_windows"] >= 8
    if shift == "grounding":
        assert 0.75 < firing["baseline"] < 0.95
        assert firing["value"] < firing["threshold"] < firing["baseline"]
        assert firing["condition"] == "below"
    else:
        assert 0.05 < firing["baseline"] < 0.2
        assert firing["value"] > firing["threshold"] > firing["baseline"]
        assert firing["condition"] == "above"
    assert f"last 60 min ({firing['events']} events); normal is" in firing["description"]
    assert f"same time of day on the last {HISTORY_DAYS} days" in firing["description"]
    assert resolution["signal"] == firing["signal"]
    assert firing["time"] == fired.isoformat(timespec="seconds")  # the judged moment

    # Both went through the webhook.
    received = sorted((p["alert"], p["status"]) for p in receiver.wait_for(2))
    assert received == [(alert, "firing"), (alert, "resolved")]


def test_the_baseline_comes_from_the_database(db: Database) -> None:
    """A restarted server (a new detector) or another replica judges exactly as the
    one that has been running: nothing is learned in memory."""
    traffic(db, "grounding")
    running = AnomalyDetector.from_database(SETTINGS, db)
    for minutes in range(0, 11 * 60, 30):
        running.judge((TODAY + timedelta(minutes=minutes)).timestamp())
    at = (SHIFT[0] + timedelta(minutes=40)).timestamp()
    restarted = AnomalyDetector.from_database(SETTINGS, db)
    assert [(j.value, j.baseline, j.z) for j in running.judge(at)] == [
        (j.value, j.baseline, j.z) for j in restarted.judge(at)
    ]
    grounding = next(j for j in restarted.judge(at) if j.signal.name == "grounding_rate")
    assert grounding.departure is not None
    assert grounding.departure > SETTINGS.threshold


def test_too_little_history_only_learns(db: Database) -> None:
    traffic(db, "grounding")
    young = AnomalyDetector.from_database(AnomalySettings(min_baseline_windows=20), db)
    verdicts = young.judge((SHIFT[0] + timedelta(hours=1)).timestamp())
    grounding = next(j for j in verdicts if j.signal.name == "grounding_rate")
    assert grounding.value is not None
    assert grounding.value < 0.5
    assert grounding.baseline is None  # 3 days x 5 windows < 20: no verdict
    assert young.evaluate((SHIFT[0] + timedelta(hours=1)).timestamp()) == []


def test_a_sudden_drop_of_documents_alerts_once(db: Database) -> None:
    detector = AnomalyDetector.from_database(SETTINGS, db)
    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    with db.session() as session:
        session.add(
            IngestRun(
                collection="docs",
                roots="/srv/docs",
                status="completed",
                deleted=40,
                started_at=now - timedelta(minutes=5),
                finished_at=now - timedelta(minutes=4),
            )
        )
    fired = detector.evaluate(now.timestamp())
    drop = [c for c in fired if c.name == "documents_drop"]
    assert [c.status for c in drop] == ["firing"]
    assert drop[0].details["collection"] == "docs"
    assert drop[0].details["deleted"] == 40
    assert "deleted 40 of the 40 documents of collection 'docs' (100%" in drop[0].description
    later = now + timedelta(minutes=30)
    assert [c for c in detector.evaluate(later.timestamp()) if c.name == "documents_drop"] == []
    after = now + timedelta(hours=2)  # the run has left the window
    assert [c.status for c in detector.evaluate(after.timestamp())] == ["resolved"]


@pytest.mark.slow
def test_a_real_answer_is_read_back_with_its_time(client: TestClient, components: Any) -> None:
    """The server stores each answer's time with its checks, where the latency signal
    reads it back."""
    before = datetime.now(UTC).timestamp()
    done = client.post(
        "/api/chat",
        json={"question": "What port does the widget server listen on?", "stream": False},
    ).json()
    stored = client.get(f"/api/conversations/{done['conversation_id']}").json()
    answer = stored["messages"][-1]
    assert answer["role"] == "assistant"
    assert answer["checks"]["seconds"] > 0
    events = SqlObservations(components.db).answers(before - 1, datetime.now(UTC).timestamp() + 1)
    assert [e.seconds for e in events] == [answer["checks"]["seconds"]]
