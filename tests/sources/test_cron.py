"""Cron schedules: the parser's answers against hand-checked calendars, its errors, and
a source made due by its cron time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app as cli
from app.settings import Settings
from app.store.db import open_database
from app.store.sources import Source
from ingest.sources.cron import Cron, CronError, next_run
from ingest.sources.registry import SourceProblem, Sources
from ingest.sources.scheduler import Scheduler
from tests.conftest import Models
from tests.sources.conftest import syncing


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def runs(expression: str, start: datetime, n: int) -> list[datetime]:
    cron, found, moment = Cron.parse(expression), [], start
    for _ in range(n):
        moment = cron.next_after(moment)
        found.append(moment)
    return found


def test_weekday_mornings_skip_the_weekend() -> None:
    # 2026-01-02 is a Friday.
    assert runs("0 3 * * 1-5", at(2026, 1, 2, 3, 0), 3) == [
        at(2026, 1, 5, 3, 0),  # Monday: Saturday and Sunday skipped; 03:00 itself excluded
        at(2026, 1, 6, 3, 0),
        at(2026, 1, 7, 3, 0),
    ]
    assert runs("0 3 * * mon-fri", at(2026, 1, 2, 2, 59, 30), 1) == [at(2026, 1, 2, 3, 0)]


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        ("*/15 * * * *", at(2026, 3, 1, 10, 7), [at(2026, 3, 1, 10, 15), at(2026, 3, 1, 10, 30)]),
        ("5/20 9 * * *", at(2026, 3, 1, 9, 30), [at(2026, 3, 1, 9, 45), at(2026, 3, 2, 9, 5)]),
        ("0 0 1,15 * *", at(2026, 1, 15, 0, 0), [at(2026, 2, 1), at(2026, 2, 15)]),
        ("0 12 * dec sun", at(2026, 1, 1), [at(2026, 12, 6, 12), at(2026, 12, 13, 12)]),
        ("0 0 29 2 *", at(2026, 1, 1), [at(2028, 2, 29), at(2032, 2, 29)]),  # leap years
        ("@monthly", at(2026, 12, 31, 23, 59), [at(2027, 1, 1), at(2027, 2, 1)]),
        ("0 0 * * 7", at(2026, 1, 1), [at(2026, 1, 4), at(2026, 1, 11)]),  # 7 is Sunday
        # Both day fields restricted: the 13th OR a Friday (Vixie cron).
        ("0 0 13 * 5", at(2026, 2, 1), [at(2026, 2, 6), at(2026, 2, 13)]),
        # Day of week "*": the 31st only, in the months that have one.
        ("0 0 31 * *", at(2026, 1, 31), [at(2026, 3, 31), at(2026, 5, 31)]),
    ],
)
def test_next_runs_match_the_calendar(
    expression: str, start: datetime, expected: list[datetime]
) -> None:
    assert runs(expression, start, len(expected)) == expected


def test_a_zone_prefix_runs_at_local_wall_time_across_daylight_saving() -> None:
    # Paris: UTC+1 in winter, UTC+2 from 2026-03-29 02:00 (02:00-03:00 does not exist),
    # back to UTC+1 on 2026-10-25 at 03:00 (02:00-03:00 twice).
    morning = "TZ=Europe/Paris 0 3 * * *"
    assert runs(morning, at(2026, 3, 27, 12), 3) == [
        at(2026, 3, 28, 2, 0),  # 03:00 CET
        at(2026, 3, 29, 1, 0),  # 03:00 CEST
        at(2026, 3, 30, 1, 0),
    ]
    skipped = runs("CRON_TZ=Europe/Paris 30 2 * * *", at(2026, 3, 28, 12), 2)
    assert skipped == [at(2026, 3, 29, 1, 30), at(2026, 3, 30, 0, 30)]  # 03:30 CEST, once
    repeated = runs("TZ=Europe/Paris 30 2 * * *", at(2026, 10, 24, 12), 2)
    assert repeated == [at(2026, 10, 25, 0, 30), at(2026, 10, 26, 1, 30)]  # once, not twice


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 3 * *", "5 fields"),
        ("0 3 * * 1-5 extra", "5 fields"),
        ("61 * * * *", "minute: 61 is outside 0-59"),
        ("0 24 * * *", "hour: 24 is outside 0-23"),
        ("0 0 0 * *", "day of month: 0 is outside 1-31"),
        ("0 0 * 13 *", "month: 13 is outside 1-12"),
        ("0 0 * * 8", "day of week: 8 is outside 0-7"),
        ("0 0 * * fri-mon", "runs backwards"),
        ("*/0 * * * *", "step"),
        ("x * * * *", "'x' is not a number"),
        ("0 0 * * funday", "not a number or a name"),
        ("0,,5 * * * *", "empty value"),
        ("0 0 30 2 *", "never runs"),
        ("@fortnightly", "unknown macro"),
        ("TZ=Mars/Olympus 0 3 * * *", "unknown time zone"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        Cron.parse(expression)


def test_next_run_of_an_interval_a_cron_and_neither() -> None:
    moment = at(2026, 1, 2, 10, 0)
    assert next_run(3600, None, moment) == moment + timedelta(hours=1)
    assert next_run(0, "0 3 * * *", moment) == at(2026, 1, 3, 3, 0)
    assert next_run(0, None, moment) is None


def test_a_source_is_due_at_its_cron_time_and_rescheduled_after_it(settings: Settings) -> None:
    db = open_database(settings)
    sources = Sources(db, settings.data_dir)
    with pytest.raises(SourceProblem, match="invalid cron expression: hour: 25"):
        sources.add("bad", "books", "folder", {"path": "/tmp"}, cron="0 25 * * *")
    with pytest.raises(SourceProblem, match="not both"):
        sources.add("both", "books", "folder", {"path": "/tmp"}, interval_s=60, cron="@daily")
    assert sources.list() == []  # nothing half-added
    nightly = sources.add("nightly", "books", "folder", {"path": "/tmp"}, cron="0  3 * * 1-5")
    assert nightly.cron == "0 3 * * 1-5"  # normalised
    assert nightly.next_run_at is not None
    assert nightly.next_run_at.hour == 3
    assert sources.due() == []  # not before its time
    # Its time comes (written into the row as a clock moving on would make it).
    friday_3am = at(2026, 1, 2, 3, 0)
    with db.session() as session:
        session.get_one(Source, nightly.id).next_run_at = friday_3am
    assert [s.name for s in sources.due(friday_3am - timedelta(seconds=1))] == []
    assert [s.name for s in sources.due(friday_3am)] == ["nightly"]
    assert next_run(0, nightly.cron, friday_3am + timedelta(minutes=4)) == at(2026, 1, 5, 3, 0)
    # Switched to an interval and back: the next run follows the schedule it has now.
    hourly = sources.set_schedule("nightly", 3600)
    assert hourly.cron is None
    assert hourly.interval_s == 3600
    back = sources.set_schedule("nightly", 0, cron="30 4 * * *")
    assert back.cron == "30 4 * * *"
    assert back.next_run_at is not None
    assert (back.next_run_at.hour, back.next_run_at.minute) == (4, 30)
    with pytest.raises(SourceProblem, match="minute: 99"):
        sources.set_schedule("nightly", 0, cron="99 * * * *")
    assert sources.get("nightly").cron == "30 4 * * *"  # the bad one changed nothing
    db.close()


def test_the_scheduler_syncs_a_cron_source_when_its_time_has_come(
    settings: Settings, models: Models, tmp_path: Path
) -> None:
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    (shelf / "a.md").write_text("# Gears\n\nThe gear train has nine teeth per wheel.\n")
    db = open_database(settings)
    sources = Sources(db, settings.data_dir)
    added = sources.add("gears", "gears", "folder", {"path": str(shelf)}, cron="*/5 * * * *")
    with syncing(settings, models) as syncer:
        scheduler = Scheduler(settings, lambda: syncer.ingestor)
        assert scheduler.run_due() == []  # its time has not come
        with db.session() as session:
            session.get_one(Source, added.id).next_run_at = datetime.now(UTC) - timedelta(minutes=1)
        results = scheduler.run_due()
    assert [(r.source, r.status) for r in results] == [("gears", "completed")]
    synced = sources.get("gears")
    assert synced.last_counts["added"] == 1
    assert synced.last_finished_at is not None
    assert synced.next_run_at is not None
    assert synced.next_run_at == Cron.parse("*/5 * * * *").next_after(synced.last_finished_at)
    assert synced.next_run_at.minute % 5 == 0
    assert sources.due() == []
    db.close()


def test_cli_adds_shows_and_lists_a_cron_schedule(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCCHAT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DOCCHAT_SECRETS_DIR", str(settings.data_dir / "none"))
    runner = CliRunner()
    args = ["sources", "add", "shelf", "folder", "/tmp", "--collection", "shelf"]
    bad = runner.invoke(cli, [*args, "--cron", "0 3 * * 1-8"])
    assert bad.exit_code == 1
    assert "day of week: 8 is outside 0-7" in bad.output
    added = runner.invoke(cli, [*args, "--cron", "0 3 * * 1-5"])
    assert added.exit_code == 0, added.output
    assert "cron 0 3 * * 1-5, next run" in added.output
    shown = runner.invoke(cli, ["sources", "show", "shelf"])
    assert "schedule: cron 0 3 * * 1-5" in shown.output
    assert "03:00 (UTC)" in shown.output
    listed = runner.invoke(cli, ["sources", "list"], env={"COLUMNS": "200"})
    assert "cron 0 3 * * 1-5" in listed.output
