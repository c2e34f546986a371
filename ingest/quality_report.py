"""The data-quality report of an ingest run: its summary and its findings, by check.

`docchat quality report` prints it; the query and the formatting live here so that any
other front end (an API route, a CI script) can reuse them.
"""

from __future__ import annotations

import re
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
        lines += [f"  {severity:<7}  {text}" for severity, text in grouped(findings)]
    return lines


# A reason said of this many files or more is printed once, with the count: a report
# that lists the same warning 127 times hides the one finding worth reading.
GROUP_AT = 3
_NUMBER = re.compile(r"\d+")


def grouped(findings: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(severity, line) per finding, in order, except that a reason repeated (numbers
    aside) for GROUP_AT or more sources is one line with the count and three of them."""
    shapes: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for finding in findings:
        shape = _NUMBER.sub("N", finding["reason"])
        shapes.setdefault((finding["severity"], shape), []).append(finding)
    lines: list[tuple[str, str]] = []
    done: set[tuple[str, str]] = set()
    for finding in findings:
        key = (finding["severity"], _NUMBER.sub("N", finding["reason"]))
        same = shapes[key]
        if len(same) < GROUP_AT:
            lines.append((finding["severity"], f"{finding['source']}: {finding['reason']}"))
        elif key not in done:
            done.add(key)
            shown = ", ".join(f["source"] for f in same[:3])
            reason = _merged([f["reason"] for f in same])
            lines.append((key[0], f"{len(same)} files: {reason} (e.g. {shown})"))
    return lines


def _check_order(check: str) -> int:
    return CHECKS.index(check) if check in CHECKS else len(CHECKS)


def _merged(reasons: list[str]) -> str:
    """The reasons (of one shape) as one: numbers they share kept, the others as N."""
    text = _NUMBER.split(reasons[0])
    numbers = [_NUMBER.findall(r) for r in reasons]
    out = [text[0]]
    for i, rest in enumerate(text[1:]):
        values = {n[i] for n in numbers}
        out += [values.pop() if len(values) == 1 else "N", rest]
    return "".join(out)
