"""Secret settings: collecting their values (to keep them out of every output), the
generated development pepper, and the production start-up check."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url

from app.settings import Settings

PLACEHOLDERS = {
    "changeme",
    "change-me",
    "change_me",
    "placeholder",
    "secret",
    "password",
    "example",
    "replace-me",
    "replaceme",
    "todo",
    "xxx",
    "test",
}
MIN_PEPPER_CHARS = 32


class ConfigError(RuntimeError):
    """Settings that must not be used as they are; the message lists every problem."""


def secret_fields(model: BaseModel, prefix: str = "") -> list[tuple[str, SecretStr]]:
    """(dotted name, value) of every SecretStr setting that is set."""
    found: list[tuple[str, SecretStr]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            found += secret_fields(value, f"{prefix}{name}.")
        elif isinstance(value, SecretStr):
            found.append((prefix + name, value))
    return found


def secret_values(settings: Settings) -> list[str]:
    """Every secret in clear, plus parts of it that are secret alone (a URL's password)."""
    values: list[str] = []
    for _name, secret in secret_fields(settings):
        value = secret.get_secret_value()
        if value:
            values.append(value)
    if settings.database.url is not None:
        try:
            password = make_url(settings.database.url.get_secret_value()).password
        except Exception:
            password = None
        if password:
            values.append(str(password))
    return values


def pepper_file(settings: Settings) -> Path:
    """Where a generated development pepper is kept."""
    return settings.data_dir / "secrets" / "key_pepper"


def write_secret_file(path: Path, value: str) -> None:
    """Create a file only its owner can read (mode 600, folder 700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)


def resolve_pepper(settings: Settings) -> tuple[bytes, bytes | None]:
    """The current and previous peppers; outside production one is generated if unset."""
    previous = settings.security.key_pepper_previous
    old = previous.get_secret_value().encode() if previous else None
    if settings.security.key_pepper is not None:
        return settings.security.key_pepper.get_secret_value().encode(), old
    if settings.env == "production":
        raise ConfigError("security.key_pepper is required in production")
    path = pepper_file(settings)
    if not path.exists():
        # Another process may write it first; then its pepper is the one.
        with contextlib.suppress(FileExistsError):
            write_secret_file(path, secrets.token_urlsafe(48))
    return path.read_text().strip().encode(), old


def production_problems(settings: Settings) -> list[str]:
    """Why these settings must not serve in production (empty: they may)."""
    if settings.env != "production":
        return []
    problems = []
    if not settings.auth_enabled:
        problems.append("authentication is off (security.auth_enabled)")
    pepper = settings.security.key_pepper
    if pepper is None:
        problems.append("security.key_pepper is missing")
    elif len(pepper.get_secret_value()) < MIN_PEPPER_CHARS:
        problems.append(f"security.key_pepper is shorter than {MIN_PEPPER_CHARS} characters")
    for name, secret in secret_fields(settings):
        value = secret.get_secret_value().strip().lower()
        if value in PLACEHOLDERS or "changeme" in value or "placeholder" in value:
            problems.append(f"{name} still has a placeholder value")
    return problems


def check_production(settings: Settings) -> None:
    """Raise ConfigError listing every problem of a production configuration."""
    problems = production_problems(settings)
    if problems:
        raise ConfigError(
            "refusing to start in production: " + "; ".join(problems) + ". See README 'Security'."
        )


def all_secret_values(settings: Settings) -> list[str]:
    """Every secret that must stay inside: settings secrets and the API-key peppers."""
    pepper, previous = resolve_pepper(settings)
    values = [*secret_values(settings), pepper.decode()]
    if previous:
        values.append(previous.decode())
    return values
