"""`docchat quarantine`: files a run kept out of the index as duplicates; release or
drop them (ingest/quarantine.py; the console and /api/admin/quarantine do the same)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from app.cli.common import console, fail, load, say

app = typer.Typer(no_args_is_help=True)

Reason = Annotated[str, typer.Option("--reason", help="Why (kept in the audit trail).")]
FindingArg = Annotated[int, typer.Argument(help="The finding's id (the list's first column).")]


def _find(settings: Any, db: Any, finding: int) -> Any:
    from ingest.quarantine import NotQuarantined, find

    try:
        return find(db, settings.data_dir / "uploads", finding)
    except NotQuarantined as exc:
        raise fail(str(exc)) from None


@app.command("list")
def quarantine_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    collection: Annotated[str | None, typer.Option(help="Only this collection.")] = None,
) -> None:
    """List the files in quarantine, newest first, with why.

    Example: docchat quarantine list --collection docs
    """
    from rich.table import Table

    from app.store.db import open_database
    from ingest.quarantine import quarantined

    settings = load()
    db = open_database(settings)
    try:
        found = quarantined(db, settings.data_dir / "uploads", collection)
    finally:
        db.close()
    if as_json:
        rows = [
            {
                "finding": q.finding,
                "collection": q.collection,
                "source": q.source,
                "run_id": q.run_id,
                "at": q.at.isoformat(),
                "reason": q.reason,
                "uploaded": q.uploaded,
            }
            for q in found
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not found:
        say("no file in quarantine")
        return
    table = Table("finding", "collection", "file", "run", "why")
    for q in found:
        table.add_row(str(q.finding), q.collection, q.source, str(q.run_id), q.reason)
    console.print(table)


@app.command("release")
def quarantine_release(finding: FindingArg, reason: Reason) -> None:
    """Index a quarantined file in spite of the duplicate.

    Example: docchat quarantine release 42 --reason "the copy is meant to be there"
    """
    from app.components import open_ingestor
    from app.store.audit import cli_actor
    from ingest.quarantine import release

    settings = load()
    with open_ingestor(settings) as ingestor:
        item = _find(settings, ingestor.db, finding)
        summary = release(ingestor.db, ingestor, item, cli_actor(), reason)
    say(f"released {item.label}: run {summary.run_id}, {summary.chunks_written} chunks")


@app.command("drop")
def quarantine_drop(finding: FindingArg, reason: Reason) -> None:
    """Forget a quarantined file (an uploaded copy is deleted).

    Example: docchat quarantine drop 42 --reason "an old copy"
    """
    from app.store.audit import cli_actor
    from app.store.db import open_database
    from ingest.quarantine import drop

    settings = load()
    db = open_database(settings)
    try:
        item = _find(settings, db, finding)
        deleted = drop(db, item, cli_actor(), reason)
    finally:
        db.close()
    say(f"dropped {item.label}" + (" (its uploaded copy deleted)" if deleted else ""))
