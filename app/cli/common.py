"""What every command shares: the consoles, settings with redacting logs, and errors
printed as one plain line."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from app.settings import Settings

console = Console()
err = Console(stderr=True)

EXIT_PARTIAL = 3  # some files failed to ingest; the rest were ingested


def load(**overrides: Any) -> Settings:
    """Settings, with logging that masks every secret (tracebacks included)."""
    return _load(overrides, startup=False)


def load_for_serving(**overrides: Any) -> Settings:
    """Settings that pass the start-up check too (the server's). Settings that fail to
    load are reported together with what that check finds in the rest of them: every
    problem in one message, not one at a time."""
    return _load(overrides, startup=True)


def _load(overrides: dict[str, Any], *, startup: bool) -> Settings:
    from pydantic import ValidationError

    from app.security.pii import redactor_for
    from app.security.redaction import Redactor
    from app.security.secrets import ConfigError, check_startup, known_secrets, problems_despite
    from app.settings import load_settings
    from app.telemetry import logging as logs

    try:
        settings = load_settings(**overrides)
        secrets = known_secrets(settings)
        if startup:
            check_startup(settings)
    except (ValueError, ConfigError) as exc:
        message = describe(exc)
        if startup and isinstance(exc, ValidationError):
            more = problems_despite(exc, overrides)
            if more:
                message += "\nand, judged on the rest of the settings:\n" + "\n".join(
                    f"  - {problem}" for problem in more
                )
        raise fail(message) from None
    pii = redactor_for(settings.privacy)
    redactor = Redactor(secrets, also=pii.redact if pii is not None else None)
    logs.install(redactor, settings.logging.level, settings.log_format)
    return settings


def describe(exc: Exception) -> str:
    """An error as lines for a person; pydantic's errors without their inputs or links."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    lines = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  - {message}" if message.startswith(where) else f"  - {where}: {message}")
    return "invalid settings:\n" + "\n".join(lines)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` as an error and give the exit to raise; in an audited command,
    it is the reason its event gives."""
    from app.store import audit

    action = audit.current()
    if action is not None:
        action.reason = message
    # Escaped: a message may quote text with [brackets] that rich would read as markup.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def say(text: str) -> None:
    """Print text as it is: file names, questions and answers are never markup."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)
