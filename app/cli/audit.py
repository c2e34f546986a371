"""`docchat audit`: the audit trail of admin actions (read only)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from app.cli.common import console, fail, load
from app.cli.durations import parse_since

app = typer.Typer(no_args_is_help=True)


@app.command("list")
def audit_list(
    since: Annotated[
        str | None,
        typer.Option(help="Only events this recent (30d, 12h, 90m, 2w) or since a date (ISO)."),
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(help="Only this action (key.create) or kind of action (key, model)."),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Who did what, when, to what, and how it ended: newest first.

    Example: docchat audit list --since 7d --action model
    """
    from app.store import audit
    from app.store.db import open_database

    try:
        moment = parse_since(since) if since else None
    except ValueError as exc:
        raise fail(str(exc)) from None
    db = open_database(load())
    try:
        with db.session() as session:
            rows = [
                audit.as_dict(e)
                for e in audit.events(session, since=moment, action=action, limit=limit)
            ]
    finally:
        db.close()
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="audit trail")
    for column in ("when", "actor", "action", "target", "outcome", "detail"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            Text(row["created_at"][:19].replace("T", " ")),
            Text(row["actor"]),
            Text(row["action"]),
            Text(row["target"]),
            Text(row["outcome"]),
            Text(_brief(row)),
        )
    console.print(table)


def _brief(row: dict[str, Any]) -> str:
    """The reason, or the detail's short values, for the table."""
    if row["reason"]:
        return str(row["reason"])
    detail = {k: v for k, v in row["detail"].items() if k != "hashes" and v not in (None, "")}
    return ", ".join(f"{k}={v}" for k, v in detail.items())
