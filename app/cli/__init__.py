"""The `docchat` command: one module per command or command group."""

from __future__ import annotations

import inspect
import sys
from typing import Any

import typer
import typer.main

from app.cli import (
    ask,
    audit,
    audited,
    backup,
    calibrate,
    collections,
    config,
    conversations,
    curate,
    dataset,
    evaluation,
    feedback,
    finetune,
    ingest,
    keys,
    models,
    quality,
    quarantine,
    reindex,
    serve,
    sources,
    users,
)
from app.cli.common import describe, fail

app = typer.Typer(
    help="docchat: answer questions from your documentation, on your own machines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(serve.serve)
app.command()(ingest.ingest)
app.command()(ask.ask)
app.command()(reindex.reindex)
app.command()(calibrate.calibrate)
app.add_typer(config.app, name="config", help="Inspect the settings.")
app.add_typer(keys.app, name="keys", help="Manage API keys (shown once, stored hashed).")
app.add_typer(users.app, name="users", help="People who sign in: list, disable, enable.")
app.add_typer(
    collections.app,
    name="collections",
    help="Collections and their readers: create, grant, revoke, delete.",
)
app.add_typer(
    sources.app, name="sources", help="Where collections come from: git, websites, folders."
)
app.add_typer(evaluation.app, name="eval", help="Measure answer and retrieval quality.")
app.add_typer(
    models.app, name="models", help="Chat models: add, pull, evaluate, activate, roll back."
)
app.add_typer(quality.app, name="quality", help="Data-quality findings of ingest runs.")
app.add_typer(
    quarantine.app, name="quarantine", help="Files kept out as duplicates: list, release, drop."
)
app.add_typer(feedback.app, name="feedback", help="Users' ratings of answers.")
app.add_typer(
    curate.app, name="curate", help="Curated answers: accept, correct, add, refresh, drop."
)
app.add_typer(finetune.app, name="finetune", help="LoRA adapters: train, evaluate, activate.")
app.add_typer(dataset.app, name="dataset", help="Datasets of curated answers: build, diff, export.")
app.add_typer(audit.app, name="audit", help="The audit trail of admin actions (read only).")
app.add_typer(
    conversations.app, name="conversations", help="Purge old conversations; delete on request."
)
app.add_typer(
    backup.app, name="backup", help="Snapshots of all docchat's data: create, verify, restore."
)

# Last: every command registered above runs as an audited admin action (app/cli/audited.py).
audited.install(app)


def main() -> None:
    """Console-script entry point."""
    command = typer.main.get_command(app)
    reflow_help(command)
    try:
        command(prog_name="docchat")
    except Exception as exc:
        # What an operator can fix (a missing model file, a busy or unreachable store, a
        # refused snapshot) is one line saying so, not a traceback.
        if not isinstance(exc, operator_errors()):
            raise
        fail(describe(exc))
        sys.exit(1)


def reflow_help(command: Any) -> None:  # a Command of typer's own (vendored) click
    """Let the terminal wrap help text: the line breaks of a docstring's paragraphs are
    its source layout, not the reader's (typer's rich help keeps them as they are).
    Indented lines (examples, one per line) are kept as written."""
    if command.help:
        command.help = "\n\n".join(
            p if p.startswith("\b") or "\n " in p else " ".join(p.split("\n"))
            for p in inspect.cleandoc(command.help).split("\n\n")
        )
    for sub in getattr(command, "commands", {}).values():
        reflow_help(sub)


def operator_errors() -> tuple[type[Exception], ...]:
    """The domain errors whose message tells an operator what to do."""
    from app.backup.stores import BackupError
    from app.llm.catalog import PullError
    from app.llm.provision import ModelNotFound
    from app.releases.errors import RegistryError
    from app.security.secrets import ConfigError
    from app.store.db import DatabaseUnavailable
    from app.store.index_record import EmbeddingMismatch
    from app.store.vectors import VectorStoreBusy, VectorStoreUnavailable

    return (
        BackupError,
        ConfigError,
        DatabaseUnavailable,
        EmbeddingMismatch,
        ModelNotFound,
        PullError,
        RegistryError,
        VectorStoreBusy,
        VectorStoreUnavailable,
    )
