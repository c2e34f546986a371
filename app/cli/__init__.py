"""The `docchat` command: one module per command or command group."""

from __future__ import annotations

import typer

from app.cli import (
    ask,
    audit,
    audited,
    backup,
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
    reindex,
    serve,
)

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
app.add_typer(config.app, name="config", help="Inspect the settings.")
app.add_typer(keys.app, name="keys", help="Manage API keys (shown once, stored hashed).")
app.add_typer(evaluation.app, name="eval", help="Measure answer and retrieval quality.")
app.add_typer(
    models.app, name="models", help="Chat models: add, pull, evaluate, activate, roll back."
)
app.add_typer(quality.app, name="quality", help="Data-quality findings of ingest runs.")
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
    app()
