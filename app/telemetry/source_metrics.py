"""Per-source sync figures, read from the sources table at scrape time: a sync may run in
any replica or in a CronJob's short-lived process, which Prometheus could never scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import select

from app.store.db import Database
from app.store.sources import Source


class SourceCollector(Collector):
    """docchat_source_* gauges, one series per source (labels source, collection, kind)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["source", "collection", "kind"]
        failing = GaugeMetricFamily(
            "docchat_source_failing",
            "1 when the source's last sync failed or was refused, else 0.",
            labels=labels,
        )
        success = GaugeMetricFamily(
            "docchat_source_last_success_timestamp_seconds",
            "End of the source's last successful sync (0: never).",
            labels=labels,
        )
        overdue = GaugeMetricFamily(
            "docchat_source_next_run_timestamp_seconds",
            "When the source's next scheduled sync is due (0: on demand only).",
            labels=labels,
        )
        seconds = GaugeMetricFamily(
            "docchat_source_last_sync_seconds", "How long the last sync took.", labels=labels
        )
        files = GaugeMetricFamily(
            "docchat_source_last_sync_files",
            "Files or pages of the last sync, by outcome (added, changed, removed, ...).",
            labels=[*labels, "outcome"],
        )
        findings = GaugeMetricFamily(
            "docchat_source_last_sync_findings", "Findings of the last sync.", labels=labels
        )
        with self.db.session() as session:
            rows = session.scalars(select(Source)).all()
            for row in rows:
                values = [row.name, row.collection, row.kind]
                failing.add_metric(values, float(row.last_status in ("failed", "refused")))
                success.add_metric(
                    values, row.last_success_at.timestamp() if row.last_success_at else 0.0
                )
                due = row.next_run_at if row.enabled and (row.interval_s or row.cron) else None
                overdue.add_metric(values, due.timestamp() if due else 0.0)
                seconds.add_metric(values, row.last_seconds or 0.0)
                findings.add_metric(values, float(row.last_findings))
                for outcome, count in (row.last_counts or {}).items():
                    files.add_metric([*values, outcome], float(count))
        yield from (failing, success, overdue, seconds, files, findings)
