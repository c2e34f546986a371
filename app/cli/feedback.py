"""`docchat feedback`: users' ratings of answers."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from app.cli.common import console, load

app = typer.Typer(no_args_is_help=True)


class RatingChoice(StrEnum):
    """What `feedback list --rating` takes."""

    up = "up"
    down = "down"


@app.command("list")
def feedback_list(
    rating: Annotated[RatingChoice | None, typer.Option(help="Only up or only down.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recent ratings of answers, with the question, the answer and its sources.

    Example: docchat feedback list --rating down --limit 50
    """
    from app.store import feedback
    from app.store.db import open_database

    settings = load()
    db = open_database(settings)
    try:
        with db.session() as session:
            items = feedback.recent(session, rating.value if rating else None, limit)
    finally:
        db.close()
    if as_json:
        sys.stdout.write(json.dumps(items, indent=2, ensure_ascii=False) + "\n")
        return
    if not items:
        console.print("no feedback yet" + (f" rated {rating.value}" if rating else ""))
        return
    table = Table(title="Feedback, newest first")
    for column in ("when", "rating", "by", "question", "comment", "top source"):
        table.add_column(column)
    for item in items:
        top = item["citations"][0]["source"] if item["citations"] else "-"
        # Text, not markup: users wrote the question and comment ("[/]" must not break it).
        table.add_row(
            item["created_at"][:16].replace("T", " "),
            item["rating"],
            *(
                Text(value)
                for value in (
                    item["given_by"] or "-",
                    item["question"] or "-",
                    item["comment"] or "",
                    top,
                )
            ),
        )
    console.print(table)
