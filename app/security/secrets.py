"""Secret settings: collecting their values (to keep them out of every output), the
generated development pepper, and the start-up checks."""

from __future__ import annotations

import contextlib
import copy
import itertools
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy.engine import make_url

from app.settings import Settings, invalid_patterns, load_settings

# Whole values that were never meant to be used.
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
    "dummy",
    "default",
}
# Anywhere in a value: the words example files use to say "put yours here".
PLACEHOLDER_WORDS = re.compile(
    r"change[-_ ]?me|place[-_ ]?holder|replace[-_ ]?me|fill[-_ ]?me[-_ ]?in"
    r"|(your|insert)[\W_].*[\W_]here",
    re.IGNORECASE,
)
# Whole-value shapes: <your-key>, ${VAR} or {{ var }} left unexpanded, password1,
# secret123!, admin2024.
PLACEHOLDER_SHAPES = re.compile(
    r"<[^<>]*>|\$\{[^{}]*\}|\{\{[^{}]*\}\}"
    r"|(password|passwd|passw0rd|secret|admin|letmein|qwerty|token|api[-_]?key|test)[-_.]?\d*\W*",
    re.IGNORECASE,
)
# Anywhere in a secret: words a person types, never a generator (a random 64-character
# token holds a given six-letter word with a chance of about 1 in 10^8).
PLACEHOLDER_INSIDE = re.compile(
    r"changeme|password|passwd|secret|example|sample|placeholder|default|dummy|letmein|qwerty",
    re.IGNORECASE,
)
# This many characters in a row, each one step from the last (abcdefgh, 98765432,
# aaaaaaaa), is typed, not random: 7 such steps in a row come by chance about once in
# 10^7 random hex strings of 64 characters, far more rarely in base64.
SEQUENCE_CHARS = 8
MIN_PEPPER_CHARS = 32
# A webhook path this long is taken for a credential (Slack's /services/T…/B…/…); a
# shorter one (/alerts) is an ordinary word that redacting would blank out everywhere.
MIN_SECRET_PATH_CHARS = 16


@dataclass(frozen=True)
class Strength:
    """What a secret needs in production: characters besides surrounding spaces, and
    distinct characters (a cheap stand-in for entropy: `aaaa…` or `abab…` fail)."""

    min_chars: int
    min_distinct: int


PEPPER = Strength(MIN_PEPPER_CHARS, 10)
TOKEN = Strength(16, 6)
# Every other secret setting is judged as a token; URLs only for placeholders.
STRENGTH = {
    "security.key_pepper": PEPPER,
    "security.key_pepper_previous": PEPPER,
    "backup.signing_key": PEPPER,
    "backup.signing_key_previous": PEPPER,
}
URL_SECRETS = frozenset({"database.url"})


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
        elif isinstance(value, dict):  # named secrets, e.g. sources.credentials
            found += [
                (f"{prefix}{name}.{key}", item)
                for key, item in value.items()
                if isinstance(item, SecretStr)
            ]
    return found


def setting_secrets(settings: Settings) -> list[str]:
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
    for url in settings.alerts.webhooks:
        values += webhook_secrets(url)
    return values


def webhook_secrets(url: str) -> list[str]:
    """A webhook URL is a credential as a whole (a Slack-style URL carries its token in
    the path): the URL, itself without credentials, its password, a long path, a query."""
    parts = urlsplit(url)
    values = [url, parts._replace(netloc=_host(parts)).geturl()]
    if parts.password:
        values += [parts.password, unquote(parts.password)]
    if len(parts.path) >= MIN_SECRET_PATH_CHARS:
        values.append(parts.path)
    if parts.query:
        values.append(parts.query)
    return values


def _host(parts: SplitResult) -> str:
    """host[:port] of a URL, without any user:password@ before it."""
    return parts.netloc.rpartition("@")[2]


def masked_url(url: str) -> str:
    """Scheme and host of a secret URL, the rest elided: https://hooks.slack.com/…"""
    parts = urlsplit(url)
    host = _host(parts)
    return f"{parts.scheme}://{host}/…" if parts.scheme and host else "…"


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


def looks_like_placeholder(value: str) -> bool:
    """Whether a secret is still an example's stand-in (changeme, <your-key>, password1…)."""
    core = value.strip()
    return (
        core.lower() in PLACEHOLDERS
        or PLACEHOLDER_WORDS.search(core) is not None
        or PLACEHOLDER_SHAPES.fullmatch(core) is not None
    )


def _period(text: str) -> int:
    """The length of the shortest block that `text` repeats (its own length if none)."""
    for size in range(1, len(text) // 2 + 1):
        if text[size:] == text[:-size]:
            return size
    return len(text)


def _longest_sequence(text: str) -> int:
    """Characters in the longest run where each is one step (+1, -1 or 0) from the last,
    always the same step: `abcdef`, `6543`, `aaaa`."""
    longest = run = 1 if text else 0
    step: int | None = None
    for before, after in itertools.pairwise(text):
        now = ord(after) - ord(before)
        if now in (-1, 0, 1) and now == step:
            run += 1
        else:
            run = 2 if now in (-1, 0, 1) else 1
        step = now
        longest = max(longest, run)
    return longest


def pattern(value: str) -> str | None:
    """Why a secret is made by hand rather than drawn at random (None: no sign of it):
    a placeholder, a placeholder word inside it, a repeated block, a sequential run.
    Never quotes the value."""
    core = value.strip()
    if looks_like_placeholder(core):
        return "still has a placeholder value"
    if PLACEHOLDER_INSIDE.search(core):
        return "holds a placeholder word (password, secret, example…): use a random value"
    period = _period(core)
    if len(core) >= 4 and period <= len(core) // 2:
        return f"repeats a block of {period} characters: use a random value"
    run = _longest_sequence(core)
    if run >= SEQUENCE_CHARS:
        return f"has a run of {run} sequential characters (abcd…, 1234…): use a random value"
    return None


def weakness(value: str, strength: Strength) -> str | None:
    """Why a secret is too weak for production (None: it is not); never quotes it."""
    if looks_like_placeholder(value):
        return "still has a placeholder value"
    core = value.strip()
    if len(core) < strength.min_chars:
        return f"is shorter than {strength.min_chars} characters (spaces around it not counted)"
    distinct = len(set(core))
    if distinct < strength.min_distinct:
        return (
            f"has only {distinct} distinct characters (at least {strength.min_distinct}): "
            "use a random value"
        )
    return pattern(core)


def _url_weakness(url: str) -> str | None:
    """A URL is not random as a whole: only placeholders in it, and its password judged
    for placeholders and patterns (not length: the database decides that)."""
    if looks_like_placeholder(url):
        return "still has a placeholder value"
    try:
        password = make_url(url).password
    except Exception:
        return None
    if password is None:
        return None
    if looks_like_placeholder(str(password)):
        return "holds a placeholder password"
    reason = pattern(str(password))
    return f"holds a password that {reason}" if reason else None


def _webhook_problems(webhooks: list[str]) -> list[str]:
    """A webhook URL's password (sent as Basic auth) is a token like any other."""
    problems = []
    for index, url in enumerate(webhooks):
        try:
            password = urlsplit(url).password
        except ValueError:
            continue  # not a URL: the settings' own validation says so
        if password is None:
            continue
        password = unquote(password)
        if looks_like_placeholder(password):
            problems.append(f"alerts.webhooks[{index}] holds a placeholder password")
        elif reason := weakness(password, TOKEN):
            problems.append(f"alerts.webhooks[{index}] holds a password that {reason}")
    return problems


def secret_problems(settings: Settings) -> list[str]:
    """Every secret setting that is set but too weak, each with its reason."""
    problems = []
    for name, secret in secret_fields(settings):
        value = secret.get_secret_value()
        if name in URL_SECRETS:
            reason = _url_weakness(value)
        else:
            reason = weakness(value, STRENGTH.get(name, TOKEN))
        if reason:
            problems.append(f"{name} {reason}")
    return problems + _webhook_problems(settings.alerts.webhooks)


def production_problems(settings: Settings) -> list[str]:
    """Why these settings must not serve in production (empty: they may)."""
    if settings.env != "production":
        return []
    problems = []
    if not settings.auth_enabled:
        problems.append("authentication is off (security.auth_enabled)")
    if settings.security.key_pepper is None:
        problems.append("security.key_pepper is missing")
    return problems + _signin_problems(settings) + secret_problems(settings)


def _signin_problems(settings: Settings) -> list[str]:
    """Sign-in in production: over HTTPS, with callbacks to a fixed address (never one
    taken from a request's Host header)."""
    oidc = settings.oidc
    if not oidc.enabled:
        return []
    problems = []
    if not str(oidc.issuer).startswith("https://"):
        problems.append("oidc.issuer must be an https:// URL")
    if not oidc.public_url:
        problems.append("oidc.public_url is required with sign-in (the callback's address)")
    elif not oidc.public_url.startswith("https://"):
        problems.append("oidc.public_url must be an https:// URL")
    if not settings.session_cookie_secure:
        problems.append("oidc.cookie_secure is off: the session cookie would go over HTTP")
    return problems


def startup_problems(settings: Settings) -> list[str]:
    """Everything that stops these settings from serving, in any environment (patterns
    that do not compile) and in production; all of it, not the first found."""
    # Validated when settings load; checked again for settings built by copying.
    patterns = settings.security.blocked_output_patterns
    return invalid_patterns("security.blocked_output_patterns", patterns) + production_problems(
        settings
    )


def _default_at(loc: tuple[int | str, ...]) -> tuple[list[str], Any] | None:
    """The setting an error's location points into (a field, or a section for a
    section's own check) and its default; None if the location is not a setting's."""
    model: type[BaseModel] = Settings
    path: list[str] = []
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            break
        path.append(str(part))
        annotation = field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return path, field.get_default(call_default_factory=True)
        model = annotation
    if not path:
        return None
    return path, model()


def problems_despite(error: ValidationError, overrides: dict[str, Any]) -> list[str]:
    """The start-up problems of settings that failed to load, judged on the rest: each
    invalid value is put back to its default and the settings are loaded again, so that
    a weak pepper is reported beside a malformed number, not once it is fixed. Empty
    when that second load fails too."""
    patched = copy.deepcopy(overrides)
    for item in error.errors(include_input=False, include_url=False):
        found = _default_at(item["loc"])
        if found is None:
            return []
        path, default = found
        node = patched
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = default
    try:
        return startup_problems(load_settings(**patched))
    except (ValueError, ConfigError):
        return []


def check_startup(settings: Settings) -> None:
    """Raise one ConfigError listing every start-up problem (see startup_problems)."""
    problems = startup_problems(settings)
    if problems:
        where = "in production" if settings.env == "production" else "with these settings"
        raise ConfigError(
            f"refusing to start {where}:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
            + "\nSee docs/security.md (Production start-up)."
        )


def known_secrets(settings: Settings) -> list[str]:
    """Every secret that must stay inside: the settings' secrets and the API-key peppers
    that exist. A generated pepper file is read, never written: commands that only look
    (config show, ingest) change nothing on disk; resolve_pepper makes one when keys
    need it."""
    values = setting_secrets(settings)
    security = settings.security
    for pepper in (security.key_pepper, security.key_pepper_previous):
        if pepper is not None and pepper.get_secret_value():
            values.append(pepper.get_secret_value())
    if security.key_pepper is None and pepper_file(settings).is_file():
        values.append(pepper_file(settings).read_text().strip())
    return values
