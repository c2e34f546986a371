"""The health charts' anomaly baselines and ingest volume per source, from real SQLite
rows: days of normal traffic then a model that stops grounding (the figure leaves its
band in the shifted hours, not before), and runs told apart by the source they came from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.settings import AnomalySettings
from app.store.db import Database
from app.store.models import IngestRun
from app.store.sources import Source
from app.telemetry.bands import bands
from app.telemetry.series import hourly, ingest_volume
from tests.telemetry.test_anomaly import SETTINGS, SHIFT, db, traffic

__all__ = ["db"]


def test_the_figure_leaves_its_band_when_grounding_fails(db: Database) -> None:
    traffic(db, "grounding")
    now = (SHIFT[0] + timedelta(hours=2, minutes=30)).timestamp()
    figures = hourly(db, 5, now=now)
    drawn = bands(SETTINGS, db, 5, now=now)
    assert set(drawn) == {"refused", "ungrounded", "down", "seconds_p50"}
    ungrounded = drawn["ungrounded"]
    assert len(ungrounded) == len(figures) == 6
    for band in ungrounded:
        assert band is not None
        assert 0.1 < band["center"] < 0.2  # 85% grounded is normal
        assert band["low"] <= band["center"] <= band["high"]
    shifted = [i for i, f in enumerate(figures) if f["at"] >= SHIFT[0].isoformat()]
    assert shifted  # the hours of the shift are drawn
    for i in range(len(figures)):
        outside = figures[i]["ungrounded"] > ungrounded[i]["high"]  # type: ignore[index,operator]
        assert outside == (i in shifted), (figures[i], ungrounded[i])
    assert bands(AnomalySettings(enabled=False), db, 5, now=now) == {}


def test_too_little_history_draws_no_band(db: Database) -> None:
    traffic(db, "grounding")
    now = (SHIFT[0] + timedelta(hours=1)).timestamp()
    young = AnomalySettings(history_days=3, min_baseline_windows=20)
    assert set(map(str, bands(young, db, 2, now=now)["ungrounded"])) == {"None"}


def test_ingest_runs_are_told_apart_by_source(db: Database, tmp_path: Path) -> None:
    data = tmp_path / "data"
    handbook = tmp_path / "handbook"
    at = datetime(2026, 12, 6, 10, tzinfo=UTC)
    with db.session() as session:
        folder = Source(
            name="handbook", collection="docs", kind="folder", config={"path": str(handbook)}
        )
        site = Source(name="site", collection="docs", kind="website", config={})
        session.add_all([folder, site])
        session.flush()
        roots = [
            str(handbook),
            str(data / "sources" / site.id / "site" / "pages"),
            str(data / "uploads" / "docs" / "a.md"),
            str(tmp_path / "elsewhere"),
        ]
        for n, root in enumerate(roots):
            session.add(
                IngestRun(
                    collection="docs", roots=root, started_at=at + timedelta(minutes=n), new=n
                )
            )
    runs = ingest_volume(db, 4, now=(at + timedelta(hours=1)).timestamp(), data_dir=data)
    assert [(r["source"], r["new"]) for r in runs] == [
        ("handbook", 0),
        ("site", 1),
        ("upload", 2),
        ("ingest", 3),
    ]
