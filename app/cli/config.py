"""`docchat config`: the effective settings and where they came from."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from app.cli.common import console, load

app = typer.Typer(no_args_is_help=True)


@app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the effective settings, secrets masked, and where each value came from."""
    from app.config_report import settings_report

    settings = load()
    rows = settings_report(settings)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="docchat settings")
    table.add_column("setting")
    table.add_column("value")
    table.add_column("from")
    for row in rows:
        # Text, not markup: values such as exclude globs hold [brackets].
        table.add_row(row["name"], Text(str(row["value"])), Text(row["source"]))
    console.print(table)


@app.command("reference")
def config_reference() -> None:
    """Print every setting with its default and description, as Markdown.

    Example: docchat config reference > settings.md
    """
    from app.config_report import settings_reference

    sys.stdout.write(settings_reference())
