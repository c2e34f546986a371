"""`docchat keys`: create, list and revoke API keys."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from app.cli.common import console, err, fail, load, say
from app.settings import Settings

app = typer.Typer(no_args_is_help=True)


def key_store(settings: Settings) -> Any:
    from app.security.keys import KeyStore
    from app.security.secrets import ConfigError, resolve_pepper
    from app.store.db import open_database

    try:
        pepper, previous = resolve_pepper(settings)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    return KeyStore(open_database(settings), pepper, previous)


@app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A unique name, e.g. the team or tool using it.")],
    scope: Annotated[str, typer.Option(help="chat, ingest (includes chat) or admin (all).")],
    expires: Annotated[
        float | None, typer.Option(help="Days until the key stops working.", min=0.001)
    ] = None,
    collection: Annotated[
        list[str] | None,
        typer.Option(
            "--collection",
            help="A collection it may read, and no other (repeatable; default: not "
            "limited: what everyone reads, or all with the admin scope).",
        ),
    ] = None,
) -> None:
    """Create an API key and print it once; only its keyed hash is stored.

    Example: docchat keys create --name support-bot --scope chat --collection runbooks
    """
    settings = load()
    try:
        key = key_store(settings).create(name, scope, expires, collections=collection)
    except ValueError as exc:
        raise fail(str(exc)) from None
    limited = f", reads only {', '.join(collection)}" if collection else ""
    err.print(
        f"key {name!r} ({scope}{limited}) created. It is shown once; store it now:",
        markup=False,
        highlight=False,
    )
    sys.stdout.write(key + "\n")


@app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys: name, scope, created, last used, expiry, state (never the key)."""
    keys = key_store(load()).list()

    def when(moment: Any) -> str:
        return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"

    rows = [
        {
            "id": k.id,
            "name": k.name,
            "scope": k.scope,
            "created": when(k.created_at),
            "last_used": when(k.last_used_at),
            "expires": when(k.expires_at),
            "state": k.state,
            "collections": ", ".join(k.collections) if k.collections is not None else "-",
        }
        for k in keys
    ]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="API keys")
    columns = ("id", "name", "scope", "created", "last_used", "expires", "state", "collections")
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*(Text(row[c]) for c in row))
    console.print(table)


@app.command("revoke")
def keys_revoke(name_or_id: Annotated[str, typer.Argument(help="Key name or id.")]) -> None:
    """Revoke a key; it is refused from the next request on."""
    if not key_store(load()).revoke(name_or_id):
        raise fail(f"no active key named or with id {name_or_id!r}")
    say(f"revoked {name_or_id}")
