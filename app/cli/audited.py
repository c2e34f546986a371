"""Every `docchat` command that changes something is an audited admin action.

`install(app)` gives every command of the tree the class `AuditedCommand`, whose
`invoke` runs the command as an `AdminAction` (app/store/audit.py): one event,
`cli.<group>.<command>` as `cli:<OS user>`, with its arguments as the target, the names
(never the values) of the options given, and how it ended, unless the domain code wrote
its own (`key.create`, `model.activate`, `backup.restore`, ...). Commands that only read
are listed in READS; a new command is audited unless it is added there.
"""

from __future__ import annotations

import logging
from typing import Any

import typer
from typer.core import TyperCommand

from app.store import audit

log = logging.getLogger(__name__)

# Commands that change nothing an admin answers for: not recorded. `ask` is a chat (its
# conversation is stored as any other); `serve` records the settings it starts with.
READS = frozenset(
    {
        "ask",
        "serve",
        "audit.list",
        "backup.list",
        "backup.verify",
        "config.reference",
        "config.show",
        "collections.list",
        "collections.show",
        "curate.list",
        "curate.show",
        "dataset.diff",
        "dataset.export",
        "dataset.list",
        "dataset.show",
        "eval.answers",
        "eval.retrieval",
        "feedback.list",
        "finetune.list",
        "finetune.show",
        "keys.list",
        "models.catalog",
        "models.list",
        "models.recommend",
        "models.show",
        "quality.report",
        "quarantine.list",
        "sources.list",
        "sources.show",
        "users.list",
    }
)


def command_name(ctx: Any) -> str:
    """ "models.add" for `docchat models add`: the command's path without the program."""
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return ".".join(reversed(names))


def _target(ctx: Any) -> str:
    """The command's arguments (a path, a name, an id): what it acted on."""
    values: list[str] = []
    for param in ctx.command.params:
        if param.param_type_name != "argument" or param.name is None:
            continue
        value = ctx.params.get(param.name)
        if isinstance(value, (list, tuple)):
            values.extend(str(v) for v in value)
        elif value is not None:
            values.append(str(value))
    return " ".join(values)


def _options(ctx: Any) -> list[str]:
    """The names of the options given (on the line or from the environment), not their
    values: a value may be a passphrase."""
    given = []
    for param in ctx.command.params:
        if param.param_type_name != "option" or param.name is None:
            continue
        source = ctx.get_parameter_source(param.name)
        if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT"):
            given.append(param.name)
    return given


def _write(action: audit.AdminAction, outcome: str, reason: str | None) -> None:
    """Write the generic event in the database the settings name. A failure is logged:
    the command's own outcome stands."""
    if action.recorded_own():
        return
    try:
        from app.settings import load_settings
        from app.store.db import open_database

        db = open_database(load_settings())
    except Exception as exc:  # invalid settings, no database: the command said so already
        # One line, no traceback: an operator reads the command's own error above it.
        log.warning("could not record %s in the audit trail: %s", action.action, exc)
        return
    try:
        audit.finish(db, action, outcome, reason)
    finally:
        db.close()


class AuditedCommand(TyperCommand):
    """A command that runs as an admin action (unless it only reads)."""

    def invoke(self, ctx: Any) -> Any:
        name = command_name(ctx)
        if name in READS:
            return super().invoke(ctx)
        action = audit.AdminAction(
            action=f"cli.{name}",
            actor=audit.cli_actor(),
            target=_target(ctx),
            detail={"options": _options(ctx)},
        )
        outcome, reason = "ok", None
        try:
            with audit.acting(action):
                return super().invoke(ctx)
        except typer.Exit as exc:
            if exc.exit_code != 0:
                # fail() gave the action its message (the reason written): a refusal.
                outcome = "refused" if action.reason else "failed"
                reason = f"exit status {exc.exit_code}"
                action.detail["exit"] = exc.exit_code
            raise
        except (KeyboardInterrupt, typer.Abort):
            outcome, reason = "failed", "interrupted"
            raise
        except BaseException as exc:
            outcome, reason = "failed", type(exc).__name__
            raise
        finally:
            _write(action, outcome, reason)


def install(app: typer.Typer) -> None:
    """Make every command under `app` (groups included, at any depth) an AuditedCommand."""
    for info in app.registered_commands:
        if info.cls is None or info.cls is TyperCommand:
            info.cls = AuditedCommand
    for group in app.registered_groups:
        if group.typer_instance is not None:
            install(group.typer_instance)
