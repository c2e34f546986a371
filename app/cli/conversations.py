"""`docchat conversations`: purge old conversations and delete them on request."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

import typer

from app.cli.common import console, fail, load, say
from app.cli.durations import parse_span

app = typer.Typer(no_args_is_help=True)


def _report(counts: dict[str, int], *, dry_run: bool, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps({**counts, "dry_run": dry_run}))
        return
    verb = "would delete" if dry_run else "deleted"
    say(
        f"{verb} {counts['conversations']} conversations, {counts['messages']} messages, "
        f"{counts['feedback']} ratings"
    )


def _age(option: str, text: str, setting: str) -> timedelta:
    """A purge's age, above 0: in the retention settings 0 means "kept forever", so a 0
    here, which would delete everything, is refused rather than read either way."""
    span = parse_span(text)
    if not span:
        raise ValueError(
            f"{option} {text} would delete everything, yet 0 means 'kept forever' in "
            f"{setting}: give an age above 0 (e.g. 1m), or leave the option out to use "
            "the retention settings"
        )
    return span


@app.command("purge")
def purge(
    older_than: Annotated[
        str | None,
        typer.Option(
            help="Delete conversations whose last message is older than this (30d, 12h, "
            "2w). Default: retention.conversation_days."
        ),
    ] = None,
    feedback_older_than: Annotated[
        str | None,
        typer.Option(help="Also delete ratings older than this. Default: retention.feedback_days."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Delete old conversations with their messages and ratings; curated examples stay.

    Example: docchat conversations purge --older-than 30d --dry-run
    """
    from app.store import audit, retention
    from app.store.db import open_database
    from app.store.models import utcnow

    settings = load()
    now = utcnow()
    try:
        conversations_before = (
            now - _age("--older-than", older_than, "retention.conversation_days")
            if older_than
            else retention.cutoff(settings.retention.conversation_days, now)
        )
        feedback_before = (
            now - _age("--feedback-older-than", feedback_older_than, "retention.feedback_days")
            if feedback_older_than
            else retention.cutoff(settings.retention.feedback_days, now)
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    if conversations_before is None and feedback_before is None:
        raise fail("nothing to purge: give --older-than, or set retention.conversation_days")
    db = open_database(settings)
    try:
        with db.session() as session:
            counts = retention.purge(
                session,
                conversations_before=conversations_before,
                feedback_before=feedback_before,
                dry_run=dry_run,
            )
            if not dry_run:
                audit.record(
                    session,
                    "cli",
                    "conversations.purge",
                    older_than or "retention",
                    detail={
                        **counts.as_dict(),
                        "conversations_before": (
                            conversations_before.isoformat() if conversations_before else None
                        ),
                        "feedback_before": feedback_before.isoformat() if feedback_before else None,
                    },
                )
    finally:
        db.close()
    _report(counts.as_dict(), dry_run=dry_run, as_json=as_json)


@app.command("delete")
def delete(
    conversation: Annotated[
        list[str] | None, typer.Option("--conversation", help="A conversation's id (repeatable).")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(help="Every conversation this key (name or id) started, and its ratings."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Delete conversations (messages and ratings with them) by id or by API key.

    Example: docchat conversations delete --key support-bot
    """
    from app.store import audit, retention
    from app.store.db import open_database
    from app.store.models import Conversation

    if bool(conversation) == bool(key):
        raise fail("give --conversation ID (one or more) or --key NAME, not both")
    db = open_database(load())
    try:
        with db.session() as session:
            if key:
                try:
                    counts = retention.delete_for_key(session, key, dry_run=dry_run)
                except LookupError as exc:
                    raise fail(str(exc)) from None
                action, target = "conversations.delete_for_key", key
            else:
                ids = list(conversation or [])
                missing = [i for i in ids if session.get(Conversation, i) is None]
                if missing:
                    raise fail("no such conversation: " + ", ".join(missing))
                counts = retention.delete_conversations(session, ids, dry_run=dry_run)
                action, target = "conversation.delete", ",".join(ids)
            if not dry_run:
                audit.record(session, "cli", action, target, detail=counts.as_dict())
    finally:
        db.close()
    _report(counts.as_dict(), dry_run=dry_run, as_json=as_json)
