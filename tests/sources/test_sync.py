"""Sync leases on SQLite and PostgreSQL, the schedule, and a sync killed half-way."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.settings import Settings
from app.store.db import Database, open_database
from app.store.models import Document, utcnow
from app.store.sources import Leases, Source
from ingest.sources.registry import Sources
from ingest.sources.scheduler import Scheduler
from tests.conftest import Models, make_settings
from tests.sources.conftest import syncing
from tests.sources.servers import git, git_server


def test_one_holder_per_collection_and_expired_leases_pass_on(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    leases = Leases(db)
    assert leases.take("docs", "a", 60)
    assert not leases.take("docs", "b", 60)  # held
    assert leases.take("other", "b", 60)  # another collection: its own lease
    assert not leases.renew("docs", "b", 60)  # only the holder renews
    assert leases.renew("docs", "a", 60)
    leases.release("docs", "a")
    assert leases.take("docs", "b", 0.05)
    time.sleep(0.1)
    assert leases.take("docs", "c", 60)  # b's ran out (a killed holder)
    assert leases.holder("docs")[0] == "c"
    db.close()


def test_racing_replicas_exactly_one_wins(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    Leases(db).take("warm-up", "x", 1)  # tables and pool ready before the race
    won: list[str] = []
    start = threading.Barrier(8)

    def replica(name: str) -> None:
        start.wait()
        if Leases(db).take("docs", name, 60):
            won.append(name)

    threads = [threading.Thread(target=replica, args=(f"r{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    db.close()


def _folder(tmp_path: Path, n: int) -> Path:
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(n):
        (folder / f"p{i}.md").write_text(f"# Page {i}\n\nWidget number {i} is painted blue.\n")
    return folder


def test_due_sources_sync_in_the_background_and_reschedule(
    settings: Settings, models: Models, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, 3)
    db = open_database(settings)
    sources = Sources(db, settings.data_dir)
    sources.add("shelf", "shelf", "folder", {"path": str(folder)}, interval_s=3600)
    sources.add("manual-only", "shelf2", "folder", {"path": str(folder)})
    assert [s.name for s in sources.due()] == ["shelf"]
    with syncing(settings, models) as syncer:
        scheduler = Scheduler(settings, lambda: syncer.ingestor)
        results = scheduler.run_due()
    assert [(r.source, r.status) for r in results] == [("shelf", "completed")]
    shelf = sources.get("shelf")
    assert shelf.last_counts["added"] == 3
    assert shelf.next_run_at is not None
    assert shelf.next_run_at - utcnow() > timedelta(minutes=59)
    assert sources.due() == []
    assert sources.get("manual-only").last_status is None  # on demand only
    db.close()


def _indexed(db_file: Path) -> int:
    try:
        with sqlite3.connect(db_file) as conn:
            return conn.execute("SELECT count(*) FROM documents WHERE status='indexed'").fetchone()[
                0
            ]
    except sqlite3.OperationalError:
        return 0


def _state(settings: Settings) -> set[tuple[Any, ...]]:
    db = open_database(settings)
    try:
        with db.session() as session:
            return {
                (d.source, d.content_hash, d.status, d.n_chunks)
                for d in session.scalars(select(Document))
            }
    finally:
        db.close()


def test_killed_sync_is_taken_over_and_converges(tmp_path: Path, models: Models) -> None:
    """SIGKILL a real `docchat sources sync` half-way: its lease runs out, the next sync
    takes over, and the collection matches a clean sync's."""
    served = tmp_path / "served"
    served.mkdir()
    git(served, "init", "-q", "--bare", "-b", "main", "big.git")
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    paragraph = "The widget pipeline moves widgets between stores and checks each one. " * 6
    for i in range(40):
        body = "\n\n".join(f"## Part {j}\n\n{i}-{j}: {paragraph}" for j in range(5))
        (work / f"page{i:02}.md").write_text(f"# Page {i}\n\n{body}\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "pages")
    git(work, "push", "-q", str(served / "big.git"), "main")
    overrides = {"sources": {"lease_s": 10, "credentials": {"repo": "tok"}}}
    with git_server(served, token="tok") as server:
        config = {"url": f"{server.url}/big.git", "credential": "repo"}
        data = tmp_path / "data"
        settings = make_settings(data, **overrides)
        db = open_database(settings)
        Sources(db, data).add("big", "big", "git", config)
        db.close()
        env = {
            **os.environ,
            "DOCCHAT_DATA_DIR": str(data),
            "DOCCHAT_SECRETS_DIR": str(tmp_path / "none"),
            "DOCCHAT_EMBEDDING__BACKEND": "torch",
            "DOCCHAT_SOURCES__LEASE_S": "10",
            # Writes of a few files (the default's 256 chunks hold all 40 pages): the
            # kill lands between writes or inside one, as on a real manual.
            "DOCCHAT_INGEST__WRITE_CHUNKS": "20",
            "DOCCHAT_SOURCES__CREDENTIALS": json.dumps({"repo": "tok"}),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "sources", "sync", "big"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 180
        while _indexed(data / "docchat.db") < 8:
            assert process.poll() is None, "the sync finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert 8 <= _indexed(data / "docchat.db") < 40

        with syncing(settings, models) as syncer:
            assert syncer.sync("big").status == "busy"  # the dead process's lease
            assert syncer.sources.get("big").last_status == "running"
            time.sleep(10.5)
            assert syncer.sources.get("big").last_status == "interrupted"  # lease ran out
            resumed = syncer.sync("big")
        assert resumed.status == "completed", resumed.error
        assert resumed.summary.unchanged >= 8
        fresh = make_settings(tmp_path / "fresh", **overrides)
        db = open_database(fresh)
        Sources(db, fresh.data_dir).add("big", "big", "git", config)
        db.close()
        with syncing(fresh, models) as syncer:
            assert syncer.sync("big").status == "completed"
    assert _state(settings) == _state(fresh)
    db = open_database(settings)
    with db.session() as session:
        row = session.scalars(select(Source)).one()
        assert row.last_status == "completed"
        assert row.state["commit"] == git(work, "rev-parse", "HEAD")
    db.close()
