"""`docchat users`: the people who signed in through the OpenID provider; disable and
enable them."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from app.cli.common import console, fail, load, say

app = typer.Typer(no_args_is_help=True)


def user_store() -> Any:
    from app.auth.users import UserStore
    from app.store.db import open_database

    return UserStore(open_database(load()))


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


@app.command("list")
def users_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List people: id, user name, e-mail, groups, last sign-in, state.

    Example: docchat users list --json
    """
    rows = [
        {
            "id": p.id,
            "username": p.username,
            "name": p.display_name,
            "email": p.email,
            "groups": sorted(p.groups),
            "created": _when(p.created_at),
            "last_sign_in": _when(p.last_sign_in_at),
            "state": p.state,
        }
        for p in user_store().list()
    ]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="People (signed in through the OpenID provider)")
    for column in ("id", "username", "email", "groups", "last_sign_in", "state"):
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(
            *(
                Text(", ".join(row[c]) if c == "groups" else row[c])
                for c in ("id", "username", "email", "groups", "last_sign_in", "state")
            )
        )
    console.print(table)


@app.command("disable")
def users_disable(
    who: Annotated[str, typer.Argument(help="The person's id, user name or e-mail.")],
) -> None:
    """Disable a person: their sessions end at once, their tokens are refused, and they
    cannot sign in until enabled. (Remove them at the provider too.)

    Example: docchat users disable alice@example.com
    """
    try:
        person = user_store().disable(who)
    except LookupError as exc:
        raise fail(str(exc)) from None
    say(f"disabled {person.username or person.id} (user:{person.id}); their sessions ended")


@app.command("enable")
def users_enable(
    who: Annotated[str, typer.Argument(help="The person's id, user name or e-mail.")],
) -> None:
    """Let a disabled person sign in again.

    Example: docchat users enable alice@example.com
    """
    try:
        person = user_store().enable(who)
    except LookupError as exc:
        raise fail(str(exc)) from None
    say(f"enabled {person.username or person.id} (user:{person.id})")
