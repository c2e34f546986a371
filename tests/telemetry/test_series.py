"""The console's hourly health figures, from rows written at known times."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from app.store.db import Database
from app.store.models import Conversation, Feedback, Message
from app.telemetry.series import HOUR, hourly

NOW = datetime(2026, 12, 6, 12, 30, tzinfo=UTC).timestamp()


def answer(session: object, at: float, seconds: float, grounded: bool, refused: bool) -> str:
    conversation = Conversation(title="q")
    session.add(conversation)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    message = Message(
        conversation_id=conversation.id,
        seq=1,
        role="assistant",
        content="an answer",
        status="complete",
        answered_from_docs=not refused,
        checks={"seconds": seconds, "grounded": grounded},
        created_at=datetime.fromtimestamp(at, UTC),
    )
    session.add(message)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    return message.id


def test_answers_and_ratings_fall_into_their_hours(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'series.db'}")
    db.migrate()
    this_hour = NOW - (NOW % HOUR)
    with db.session() as session:
        first = answer(session, this_hour + 60, 2.0, True, False)
        answer(session, this_hour + 120, 4.0, False, False)
        answer(session, this_hour - HOUR + 5, 8.0, True, True)  # the hour before
        answer(session, this_hour - 5 * HOUR, 1.0, True, False)  # before the span
        rated = datetime.fromtimestamp(this_hour + 300, UTC)
        session.add(Feedback(message_id=first, rating=-1, given_by="a", created_at=rated))
        session.add(Feedback(message_id=first, rating=1, given_by="b", created_at=rated))
    figures = hourly(db, 2, now=NOW)
    db.close()
    assert [f["answers"] for f in figures] == [0, 1, 2]
    before, last = figures[1], figures[2]
    assert before["refused"] == 1.0
    assert before["seconds_p50"] == 8.0
    assert last["seconds_p50"] == 2.0
    assert last["seconds_p95"] == 4.0
    assert last["ungrounded"] == 0.5
    assert last["refused"] == 0.0
    assert (last["ratings"], last["down"]) == (2, 0.5)
    assert last["at"] == datetime.fromtimestamp(this_hour, UTC).isoformat(timespec="seconds")
