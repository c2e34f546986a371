"""The data-quality report of an ingest run: its summary and its findings, by check.

`docchat quality report` prints it; the query and the formatting live here so that any
other front end (an API route, a CI script) can reuse them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.store.db import Database
from app.store.models import IngestRun
from ingest.quality import CHECKS

COUNTS = (
    "new",
    "changed",
    "unchanged",
    "deleted",
    "failed",
    "quarantined",
    "skipped",
    "chunks_written",
)


def find_run(db: Database, collection: str | None, run_id: int | None = None) -> int | None:
    """Id of run `run_id` (of `collection`, if named), or of the collection's latest run.

    The latest run is the last finished one that wrote: dry runs change nothing, and a
    run still going (or killed outright) has not stored its findings yet.
    """
    query = select(IngestRun.id)
    if collection is not None:
        query = query.where(IngestRun.collection == collection)
    if run_id is not None:
        query = query.where(IngestRun.id == run_id)
    else:
        query = query.where(IngestRun.dry_run.is_(False), IngestRun.status != "running")
    with db.session() as session:
        return session.scalars(query.order_by(IngestRun.id.desc()).limit(1)).first()


def build_report(db: Database, run_id: int) -> dict[str, Any]:
    """{"run": the run's summary, "findings": its findings, grouped by check}."""
    with db.session() as session:
        run = session.get_one(IngestRun, run_id)
        summary: dict[str, Any] = {
            "id": run.id,
            "collection": run.collection,
            "status": run.status,
            "dry_run": run.dry_run,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            **{name: getattr(run, name) for name in COUNTS},
            "seconds": round(run.seconds, 3),
        }
        findings = [
            {"check": f.check, "severity": f.severity, "source": f.path, "reason": f.reason}
            for f in run.findings
        ]
    summary["errors"] = sum(1 for f in findings if f["severity"] == "error")
    summary["warnings"] = len(findings) - summary["errors"]
    findings.sort(key=lambda f: (_check_order(f["check"]), f["check"], f["severity"] != "error"))
    return {"run": summary, "findings": findings}


def summary_line(run: dict[str, Any]) -> str:
    """One line: which run, its outcome, and its counts."""
    counts = ", ".join(f"{run[n]} {n.replace('_', ' ')}" for n in COUNTS)
    dry = " (dry run)" if run["dry_run"] else ""
    return (
        f"run {run['id']} into {run['collection']!r}{dry}, {run['started_at'][:19]}: "
        f"{run['status']}; {counts}; {run['seconds']:.1f} s"
    )


def format_report(report: dict[str, Any]) -> list[str]:
    """The report as lines of plain text: the summary, then each check and its findings."""
    run = report["run"]
    lines = [summary_line(run), f"findings: {run['errors']} errors, {run['warnings']} warnings"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for finding in report["findings"]:
        groups.setdefault(finding["check"], []).append(finding)
    for check, findings in groups.items():
        lines += ["", f"{check} ({len(findings)})"]
        lines += [f"  {f['severity']:<7}  {f['source']}: {f['reason']}" for f in findings]
    return lines


def _check_order(check: str) -> int:
    return CHECKS.index(check) if check in CHECKS else len(CHECKS)
