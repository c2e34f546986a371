"""`docchat quality`: data-quality findings of ingest runs."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from app.cli.common import fail, load

app = typer.Typer(no_args_is_help=True)


@app.command("report")
def quality_report(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    collection: Annotated[
        str | None, typer.Option(help="Collection (default: vectors.collection).")
    ] = None,
    run: Annotated[
        int | None, typer.Option(help="Run id (default: the collection's last run).")
    ] = None,
) -> None:
    """Show the data-quality findings of the last ingest run, grouped by check.

    Example: docchat quality report --collection docs --json
    """
    from app.store.db import open_database
    from ingest.quality_report import build_report, find_run, format_report

    settings = load()
    # A run id needs no collection; one named with it must match.
    target = collection if run is not None else collection or settings.vectors.collection
    db = open_database(settings)
    try:
        run_id = find_run(db, target, run)
        report = build_report(db, run_id) if run_id is not None else None
    finally:
        db.close()
    if report is None and run is not None:
        raise fail(f"no ingest run {run}" + (f" of collection {target!r}" if target else ""))
    if report is None:
        raise fail(f"no ingest run of collection {target!r} yet: run `docchat ingest` first")
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    typer.echo("\n".join(format_report(report)))
