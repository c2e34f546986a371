"""`docchat collections`: the collections a server answers from, who may read them and
who owns them (may fill them without being an admin)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from app.cli.common import console, fail, load, say

app = typer.Typer(no_args_is_help=True)

Kind = Annotated[str, typer.Argument(help="everyone, group, user or key.")]
Who = Annotated[
    str,
    typer.Argument(
        help="A group's name, a user's id, user name or e-mail, a key's id or name "
        "(nothing for everyone)."
    ),
]


def collections() -> Any:
    from app.access.collections import Collections
    from app.store.db import open_database

    return Collections(open_database(load()))


def _readers(view: Any) -> str:
    return ", ".join(
        "everyone" if r.kind == "everyone" else f"{r.kind}:{r.label}" for r in view.readers
    )


def _owners(view: Any) -> str:
    return ", ".join(f"{r.kind}:{r.label}" for r in view.owners)


Owner = Annotated[
    bool,
    typer.Option(
        "--owner",
        help="An owner rather than a reader: may upload into the collection, add, remove "
        "and sync its sources and see its runs (and reads it); a group, user or key.",
    ),
]


def _refused(exc: Exception) -> typer.Exit:
    return fail(str(exc))


@app.command("list")
def collections_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List collections: documents, readers (admins read them all).

    Example: docchat collections list --json
    """
    views = collections().list()
    if as_json:
        console.print_json(json.dumps([v.as_dict() for v in views]))
        return
    table = Table(title="Collections")
    for column in ("name", "title", "documents", "readers", "owners"):
        table.add_column(column)
    for v in views:
        table.add_row(
            Text(v.name),
            Text(v.title),
            str(v.documents),
            Text(_readers(v) or "(admins only)"),
            Text(_owners(v) or "-"),
        )
    console.print(table)


@app.command("show")
def collections_show(name: Annotated[str, typer.Argument(help="The collection.")]) -> None:
    """One collection with its readers, as JSON."""
    from app.access.collections import CollectionError

    try:
        view = collections().show(name)
    except CollectionError as exc:
        raise _refused(exc) from None
    console.print_json(json.dumps(view.as_dict()))


@app.command("create")
def collections_create(
    name: Annotated[str, typer.Argument(help="3-63 letters, digits, '.', '_' or '-'.")],
    title: Annotated[str, typer.Option(help="What the page shows.")] = "",
    description: Annotated[str, typer.Option(help="What it holds.")] = "",
    everyone: Annotated[
        bool, typer.Option("--everyone", help="Readable by everyone who may chat.")
    ] = False,
) -> None:
    """Register a collection; only admins read it until readers are granted. Then
    `docchat ingest FOLDER --collection NAME` fills it.

    Example: docchat collections create runbooks --title "Support runbooks"
    """
    from app.access.collections import CollectionError

    try:
        collections().create(name, title=title, description=description, everyone=everyone)
    except CollectionError as exc:
        raise _refused(exc) from None
    say(f"created {name}" + (" (readable by everyone)" if everyone else " (admins only)"))


@app.command("grant")
def collections_grant(
    name: Annotated[str, typer.Argument(help="The collection.")],
    kind: Kind,
    who: Who = "",
    owner: Owner = False,
) -> None:
    """Let a group, a person, a key or everyone read a collection (from the next
    request on, on every replica); with --owner, let a group, person or key fill it.

    Example: docchat collections grant runbooks group support;
    docchat collections grant runbooks user alice@example.com --owner
    """
    from app.access.collections import CollectionError

    try:
        if owner:
            granted = collections().grant_owner(name, kind, who)
        else:
            granted = collections().grant(name, kind, who)
    except CollectionError as exc:
        raise _refused(exc) from None
    say(f"{granted.kind} {granted.label} {'owns' if owner else 'may read'} {name}")


@app.command("revoke")
def collections_revoke(
    name: Annotated[str, typer.Argument(help="The collection.")],
    kind: Kind,
    who: Who = "",
    owner: Owner = False,
) -> None:
    """Take a reader's access away: its people lose the collection's answers,
    documents and conversations from the next request on (--owner: an owner's rights,
    reading included unless also a reader).

    Example: docchat collections revoke docs everyone
    """
    from app.access.collections import CollectionError

    try:
        if owner:
            gone = collections().revoke_owner(name, kind, who)
        else:
            gone = collections().revoke(name, kind, who)
    except CollectionError as exc:
        raise _refused(exc) from None
    say(f"{gone.kind} {gone.label} no longer {'owns' if owner else 'reads'} {name}")


@app.command("delete")
def collections_delete(
    name: Annotated[str, typer.Argument(help="The collection.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do it: there is no undo.")] = False,
) -> None:
    """Delete a collection: its documents, vectors, keyword index and readers.
    Conversations stay (admins only) until retention deletes them. Stop a server on the
    embedded vector store first, as for ingest.

    Example: docchat collections delete old-manual --yes
    """
    from app.access.collections import CollectionError
    from app.components import open_vectors

    if not yes:
        raise fail(f"deleting {name} cannot be undone: add --yes")
    settings = load()
    try:
        vectors = open_vectors(settings, writer=True)
    except Exception as exc:  # the embedded store busy (a server runs), or unreachable
        raise fail(f"cannot open the vector store: {exc}") from None
    try:
        counts = collections().delete(name, vectors, settings.data_dir / "lexical")
    except CollectionError as exc:
        raise _refused(exc) from None
    finally:
        vectors.close()
    say(f"deleted {name} ({counts['documents']} documents)")
