"""`docchat curate`: turn rated answers into curated examples, add examples by hand or
from JSONL, and keep them fresh when the documents change."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from app.cli.common import console, fail, load, say

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.settings import Settings

app = typer.Typer(no_args_is_help=True)

Reviewer = Annotated[str, typer.Option(help="Who approved it (recorded with the example).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


class StatusChoice(StrEnum):
    """What `curate list --status` takes."""

    active = "active"
    stale = "stale"
    dropped = "dropped"


@contextmanager
def store() -> Iterator[tuple[Settings, Session]]:
    """The settings and a database session; a refusal is printed as one line."""
    from app.curation.errors import CurationError
    from app.store.db import open_database

    settings = load()
    db = open_database(settings)
    try:
        with db.session() as session:
            yield settings, session
    except CurationError as exc:
        raise fail(str(exc)) from None
    finally:
        db.close()


def _print(example: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(example, indent=2, ensure_ascii=False) + "\n")
        return
    about = ", ".join(example[k] for k in ("status", "origin", "collection"))
    say(f"example {example['id']} ({about})")
    if example["stale_reason"]:
        say(f"stale: {example['stale_reason']}")
    for turn in example["turns"]:
        say(f"  {turn['role']}: {turn['content']}")
    say(f"question: {example['question']}")
    say(f"answer: {example['answer']}")
    if example["model_answer"] is not None:
        say(f"model's answer: {example['model_answer']}")
    if example["rating"]:
        say(
            f"rating: {example['rating']}"
            + (f" — {example['comment']}" if example["comment"] else "")
        )
    for n, p in enumerate(example["passages"], start=1):
        where = f"{p['source']} — {p['section']}" if p.get("section") else p["source"]
        say(f"[{n}] {where} (document {str(p.get('content_hash') or '-')[:12]})")


@app.command()
def accept(
    message_id: Annotated[str, typer.Argument(help="The answer's message id.")],
    reviewer: Reviewer = "cli",
    as_json: AsJson = False,
) -> None:
    """Accept an answer as it is: its question, earlier turns and passages become an example.

    Example: docchat curate accept 3f2a9c0e...   (ids: docchat feedback list --json)
    """
    from app.curation import examples

    with store() as (settings, session):
        example, created = examples.from_message(
            session, message_id, reviewer=reviewer, default_collection=settings.vectors.collection
        )
        shown = examples.as_dict(example)
    if not as_json:
        say(f"{'accepted' if created else 'updated'} example {shown['id']}")
    _print(shown, as_json)


@app.command()
def correct(
    message_id: Annotated[str, typer.Argument(help="The answer's message id.")],
    answer: Annotated[str, typer.Option(help="The corrected answer.")],
    reviewer: Reviewer = "cli",
    as_json: AsJson = False,
) -> None:
    """Approve your own answer in place of the model's (the model's is kept beside it).

    Example: docchat curate correct 3f2a9c0e... --answer "The server listens on port 7421."
    """
    from app.curation import examples

    with store() as (settings, session):
        example, created = examples.from_message(
            session,
            message_id,
            reviewer=reviewer,
            default_collection=settings.vectors.collection,
            answer=answer,
        )
        shown = examples.as_dict(example)
    if not as_json:
        say(f"{'corrected' if created else 'updated'} example {shown['id']}")
    _print(shown, as_json)


@app.command()
def add(
    question: Annotated[str | None, typer.Option(help="The question.")] = None,
    answer: Annotated[str | None, typer.Option(help="The approved answer.")] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(help="A document it answers from (PATH, or PATH#N for chunk N); repeatable."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            help="JSONL: one {question, answer, turns?, sources?, passages?} per line.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    collection: Annotated[str | None, typer.Option(help="Default: vectors.collection.")] = None,
    reviewer: Reviewer = "cli",
) -> None:
    """Add an example by hand, or import examples from a JSONL file.

    Examples:
      docchat curate add --question "Which port?" --answer "7421." --source guide.md
      docchat curate add --file examples.jsonl
    """
    from app.curation import examples

    if (file is None) == (question is None and answer is None):
        raise fail("give --question and --answer, or --file")
    with store() as (settings, session):
        into = collection or settings.vectors.collection
        if file is not None:
            with file.open(encoding="utf-8") as lines:
                added, skipped = examples.import_jsonl(
                    session, lines, collection=into, reviewer=reviewer
                )
            say(
                f"imported {len(added)} examples"
                + (f", {skipped} already curated" if skipped else "")
            )
            return
        if question is None or answer is None:
            raise fail("give both --question and --answer")
        example = examples.add(
            session, question, answer, collection=into, reviewer=reviewer, sources=source or []
        )
        say(f"added example {example.id}")


@app.command("list")
def list_(
    status: Annotated[StatusChoice | None, typer.Option(help="Only this status.")] = None,
    stale: Annotated[bool, typer.Option("--stale", help="Only stale examples.")] = False,
    collection: Annotated[str | None, typer.Option(help="Only this collection.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1)] = 50,
    as_json: AsJson = False,
) -> None:
    """Curated examples (not dropped ones unless asked), staleness checked first.

    Example: docchat curate list --stale
    """
    from app.curation import examples

    wanted: Any = "stale" if stale else (status.value if status else None)
    with store() as (_settings, session):
        shown = [
            examples.as_dict(e)
            for e in examples.listed(session, status=wanted, collection=collection, limit=limit)
        ]
    if as_json:
        sys.stdout.write(json.dumps(shown, indent=2, ensure_ascii=False) + "\n")
        return
    if not shown:
        console.print("no curated examples" + (f" ({wanted})" if wanted else ""))
        return
    table = Table(title="Curated examples, newest first")
    for column in ("id", "status", "origin", "question", "answer", "why stale"):
        table.add_column(column)
    for e in shown:
        table.add_row(
            e["id"],
            e["status"],
            e["origin"],
            *(Text(v) for v in (e["question"], e["answer"][:80], e["stale_reason"] or "")),
        )
    console.print(table)


@app.command()
def show(
    example_id: Annotated[str, typer.Argument(help="The example's id.")], as_json: AsJson = False
) -> None:
    """One example: turns, question, answer, passages and where it came from."""
    from app.curation import examples, staleness

    with store() as (_settings, session):
        example = examples.get(session, example_id)
        staleness.mark(session, example)
        shown = examples.as_dict(example)
    _print(shown, as_json)


@app.command()
def drop(
    example_id: Annotated[str, typer.Argument(help="The example's id.")],
    reviewer: Reviewer = "cli",
) -> None:
    """Set an example aside: datasets built from now on leave it out."""
    from app.curation import examples

    with store() as (_settings, session):
        examples.drop(session, example_id, reviewer=reviewer)
    say(f"dropped example {example_id}")


@app.command()
def refresh(
    example_id: Annotated[str, typer.Argument(help="The example's id.")],
    reviewer: Reviewer = "cli",
) -> None:
    """Take a stale example's passages again from the current documents; it is active again.

    Example: docchat curate list --stale; docchat curate refresh ID
    """
    from app.curation import examples

    with store() as (_settings, session):
        example = examples.refresh(session, example_id, reviewer=reviewer)
        shown = examples.as_dict(example)
    say(f"refreshed example {example_id}")
    _print(shown, False)


@app.command()
def check() -> None:
    """Mark the examples whose documents changed or went away as stale (exit 3 if any)."""
    from app.curation import staleness

    with store() as (_settings, session):
        stale = [(e.id, e.stale_reason or "") for e in staleness.check(session)]
    for example_id, reason in stale:
        say(f"stale {example_id}: {reason}")
    say(f"{len(stale)} stale examples")
    if stale:
        raise typer.Exit(3)
