"""What an ingest run reports: its summary, as printed, and the record of the run
(the ingest_runs row and its findings) that `docchat quality` and the admin API read."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from app.store.db import Database
from app.store.models import OUTCOMES, IngestFinding, IngestRun, utcnow
from ingest.quality import Finding


@dataclass
class IngestSummary:
    """The outcome of a run, as printed and as stored."""

    run_id: int | None = None
    collection: str = ""
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    skipped: int = 0
    # Kept out of the index by a check (an exact duplicate): not a failure of the run.
    quarantined: int = 0
    chunks_written: int = 0
    seconds: float = 0.0
    status: str = "running"
    dry_run: bool = False
    findings: list[Finding] = field(default_factory=list)
    # Seconds spent per stage (load, chunk, embed, store): where a slow run goes.
    stages: dict[str, float] = field(default_factory=dict)
    model: str = ""  # the embedding model (and variant) the chunks were embedded with

    def timed(self, stage: str, started: float) -> None:
        """Add the time since `started` (a perf_counter value) to a stage."""
        self.stages[stage] = self.stages.get(stage, 0.0) + time.perf_counter() - started

    @property
    def partial(self) -> bool:
        """Some files failed; the rest were ingested."""
        return self.failed > 0


def start_run(db: Database, collection: str, roots: list[Path], dry_run: bool) -> int:
    """Record a run as it starts; its id."""
    with db.session() as session:
        run = IngestRun(collection=collection, roots="\n".join(map(str, roots)), dry_run=dry_run)
        session.add(run)
        session.flush()
        return run.id


def finish_run(db: Database, summary: IngestSummary) -> None:
    """Record how a run ended: its counts, status and findings."""
    with db.session() as session:
        run = session.get_one(IngestRun, summary.run_id)
        for name in OUTCOMES:
            setattr(run, name, getattr(summary, name))
        run.chunks_written, run.seconds = summary.chunks_written, summary.seconds
        run.status, run.finished_at = summary.status, utcnow()
        run.findings = [
            IngestFinding(path=f.source, severity=f.severity, reason=f.reason, check=f.check)
            for f in summary.findings
        ]
