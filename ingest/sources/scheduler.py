"""The server's background syncs: due sources every `sources.poll_interval_s`, and the
syncs an admin starts (POST /api/admin/sources/{name}/sync).

One sync at a time in a server (it holds the embedded store as its one writer); across
replicas the collection leases (app/store/sources.py) decide who runs each sync, so
every replica may run this loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from app.settings import Settings
from ingest.pipeline import Ingestor
from ingest.sources.sync import Syncer, SyncResult

log = logging.getLogger(__name__)


class Scheduler:
    """Runs syncs in a worker thread of the server, one at a time."""

    def __init__(self, settings: Settings, ingestor: Callable[[], Ingestor]) -> None:
        self.settings = settings
        self.ingestor = ingestor
        self.lock = threading.Lock()
        self.results: dict[str, SyncResult] = {}

    def syncer(self) -> Syncer:
        return Syncer(self.settings, self.ingestor())

    def run_due(self) -> list[SyncResult]:
        """Sync every due source (unless a sync of this server runs now)."""
        if not self.lock.acquire(blocking=False):
            return []
        try:
            results = self.syncer().sync_due()
        finally:
            self.lock.release()
        for result in results:
            self.results[result.source] = result
            if result.status in ("failed", "refused"):
                log.warning("sync of source %s %s: %s", result.source, result.status, result.error)
        return results

    def start(self, name: str, *, allow_mass_change: bool = False) -> bool:
        """Start syncing a source in a thread; False if a sync of this server runs."""
        if not self.lock.acquire(blocking=False):
            return False

        def work() -> None:
            try:
                result = self.syncer().sync(name, allow_mass_change=allow_mass_change)
                self.results[result.source] = result
            except Exception:  # reported through the source's status
                log.exception("sync of source %s failed", name)
            finally:
                self.lock.release()

        threading.Thread(target=work, name=f"sync-{name}", daemon=True).start()
        return True

    @property
    def busy(self) -> bool:
        return self.lock.locked()

    async def run(self) -> None:
        """Forever: run due syncs, then wait `sources.poll_interval_s`."""
        while True:
            try:
                await asyncio.to_thread(self.run_due)
            except Exception:  # the database may be away for a while; try again later
                log.exception("scheduled source syncs failed")
            await asyncio.sleep(self.settings.sources.poll_interval_s)
