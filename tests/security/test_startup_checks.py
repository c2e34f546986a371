"""The start-up check: weak or placeholder secrets, patterns that do not compile, and
every problem reported at once, in one clear message without a traceback."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.components import build_guards, open_database
from app.security.secrets import ConfigError, check_startup, production_problems
from app.settings import Settings
from tests.conftest import run_docchat

STRONG_PEPPER = secrets.token_urlsafe(48)


def production(**sections: dict[str, object]) -> Settings:
    """Production settings with a strong pepper unless `security` says otherwise."""
    values: dict[str, object] = {"security": {"key_pepper": STRONG_PEPPER}}
    values.update(sections)
    return Settings(_env_file=None, _secrets_dir="/nonexistent", env="production", **values)  # type: ignore[arg-type]


def test_strong_values_pass() -> None:
    settings = production(
        security={"key_pepper": STRONG_PEPPER, "key_pepper_previous": secrets.token_hex(32)},
        alerts={"webhook_token": secrets.token_urlsafe(24)},
        llm={"remote_api_key": "sk-" + secrets.token_hex(16)},
        database={"url": f"postgresql+psycopg://docchat:{secrets.token_hex(12)}@db/docchat"},
    )
    assert production_problems(settings) == []


@pytest.mark.parametrize(
    ("sections", "problem"),
    [
        ({"security": {"key_pepper": " " * 34}}, "security.key_pepper is shorter than 32"),
        (
            {"security": {"key_pepper": "a" * 34}},
            "security.key_pepper has only 1 distinct characters",
        ),
        (
            {"security": {"key_pepper": "ab" * 24}},
            "security.key_pepper has only 2 distinct characters",
        ),
        (
            {"security": {"key_pepper": STRONG_PEPPER, "key_pepper_previous": "x"}},
            "security.key_pepper_previous is shorter than 32",
        ),
        (
            {"alerts": {"webhook_token": "password1"}},
            "alerts.webhook_token still has a placeholder",
        ),
        (
            {"alerts": {"webhook_token": "password1234567890"}},
            "alerts.webhook_token still has a placeholder",
        ),
        (
            {"llm": {"remote_api_key": "<your-api-key-here>"}},
            "llm.remote_api_key still has a placeholder",
        ),
        (
            {"llm": {"remote_api_key": "insert-your-openai-key-here"}},
            "llm.remote_api_key still has a placeholder",
        ),
        (
            {"llm": {"remote_api_key": "${REMOTE_KEY}"}},
            "llm.remote_api_key still has a placeholder",
        ),
        ({"alerts": {"webhook_token": "short-token"}}, "alerts.webhook_token is shorter than 16"),
        (
            {"database": {"url": "postgresql://docchat:<password>@db/docchat"}},
            "database.url holds a placeholder password",
        ),
    ],
)
def test_weak_secrets_are_refused(sections: dict[str, dict[str, object]], problem: str) -> None:
    problems = production_problems(production(**sections))
    assert any(p.startswith(problem) for p in problems), problems
    for section in sections.values():
        for value in section.values():
            # Reasons never quote the value (a strong pepper beside a weak one included).
            assert all(str(value).strip() not in p for p in problems if str(value).strip())


def test_invalid_pattern_is_a_settings_error_naming_its_index() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, security={"blocked_output_patterns": ["ok", "(unclosed", "[z-a]"]})  # type: ignore[arg-type]
    message = str(refused.value)
    assert "security.blocked_output_patterns[1] is not a valid regular expression" in message
    assert "security.blocked_output_patterns[2] is not a valid regular expression" in message
    assert "[0]" not in message


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    """A missing pepper comes with the rest, also from the components' own check."""
    settings = production(
        security={"auth_enabled": False},
        alerts={"webhook_token": "changeme-please-1234"},
    ).model_copy(update={"data_dir": tmp_path})
    # A copy skips validation: the start-up check still catches a bad pattern.
    settings.security.blocked_output_patterns.append("(")
    with pytest.raises(ConfigError) as refused:
        check_startup(settings)
    message = str(refused.value)
    for problem in (
        "authentication is off",
        "security.key_pepper is missing",
        "alerts.webhook_token still has a placeholder",
        "security.blocked_output_patterns[0] is not a valid regular expression",
    ):
        assert problem in message
    db = open_database(settings)
    try:
        with pytest.raises(ConfigError) as from_guards:
            build_guards(settings, db)
        assert str(from_guards.value) == message
    finally:
        db.close()


def serve(env_settings: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DOCCHAT_")},
        "DOCCHAT_DATA_DIR": str(tmp_path / "data"),
        "DOCCHAT_SECRETS_DIR": str(tmp_path / "none"),
        "DOCCHAT_ENV_FILE": str(tmp_path / "absent.env"),
        **env_settings,
    }
    return run_docchat("serve", "--port", "1", env=env, timeout=120)


def test_serve_prints_every_problem_once_and_exits_1(tmp_path: Path) -> None:
    result = serve(
        {
            "DOCCHAT_ENV": "production",
            "DOCCHAT_SECURITY__AUTH_ENABLED": "false",
            "DOCCHAT_ALERTS__WEBHOOK_TOKEN": "password1",
            "DOCCHAT_LLM__REMOTE_API_KEY": "<your-api-key-here>",
        },
        tmp_path,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("refusing to start in production") == 1
    for problem in (
        "authentication is off",
        "security.key_pepper is missing",
        "alerts.webhook_token still has a placeholder",
        "llm.remote_api_key still has a placeholder",
    ):
        assert problem in result.stderr
    assert "password1" not in result.stderr
    assert "your-api-key" not in result.stderr


def test_serve_names_an_invalid_pattern_without_a_traceback(tmp_path: Path) -> None:
    result = serve({"DOCCHAT_SECURITY__BLOCKED_OUTPUT_PATTERNS": '["fine", "(oops"]'}, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "security.blocked_output_patterns[1] is not a valid regular expression" in result.stderr


# Issue 22, item 1: hand-made secrets that the probe got past production start-up.
@pytest.mark.parametrize(
    ("sections", "problem"),
    [
        (
            {"security": {"key_pepper": "0123456789abcdef" * 3}},
            "security.key_pepper repeats a block of 16 characters",
        ),
        (
            {"security": {"key_pepper": "abcdefghij" * 4}},
            "security.key_pepper repeats a block of 10 characters",
        ),
        (
            {"security": {"key_pepper": "0123456789abcdefghijklmnopqrstuvwxyz"}},
            "security.key_pepper has a run of",
        ),
        (
            {"security": {"key_pepper": "Qx7-" + "abcdefghijkl" + secrets.token_hex(12)}},
            "security.key_pepper has a run of 12 sequential characters",
        ),
        (
            {"security": {"key_pepper": "our-production-secret-pepper-2026!"}},
            "security.key_pepper holds a placeholder word",
        ),
        (
            {"alerts": {"webhook_token": "my-Example-Token-77"}},
            "alerts.webhook_token holds a placeholder word",
        ),
        (
            {"alerts": {"webhooks": ["https://alerts:changeme@hooks.example.org/in"]}},
            "alerts.webhooks[0] holds a placeholder password",
        ),
        (
            {"alerts": {"webhooks": ["https://ok.example.org/a", "https://u:abc@h.example.org/b"]}},
            "alerts.webhooks[1] holds a password that is shorter than 16",
        ),
        (
            {"alerts": {"webhooks": ["https://u:" + "Kx9-Qz" * 3 + "@h.example.org/b"]}},
            "alerts.webhooks[0] holds a password that repeats a block of 6",
        ),
        (
            {"database": {"url": "postgresql://docchat:abcd1234abcd1234@db/docchat"}},
            "database.url holds a password that repeats a block of 8",
        ),
    ],
)
def test_patterned_secrets_are_refused(
    sections: dict[str, dict[str, object]], problem: str
) -> None:
    """Each passed the length and distinct-character checks before (issue 22)."""
    problems = production_problems(production(**sections))
    assert any(p.startswith(problem) for p in problems), problems
    assert not any("changeme" in p or "abcdefghij" in p or "Kx9" in p for p in problems)


def test_random_secrets_are_not_taken_for_patterns() -> None:
    """Generated values of every usual shape pass: the checks look for hand-made ones."""
    for _ in range(300):
        settings = production(
            security={"key_pepper": secrets.token_urlsafe(48)},
            alerts={"webhooks": [f"https://a:{secrets.token_urlsafe(18)}@hooks.example.org/x"]},
            database={"url": f"postgresql://docchat:{secrets.token_hex(12)}@db/docchat"},
        )
        assert production_problems(settings) == []
        settings = production(
            security={"key_pepper": secrets.token_hex(32)},
            alerts={"webhook_token": secrets.token_hex(16)},
        )
        assert production_problems(settings) == []


def test_every_webhook_problem_is_reported_not_the_first() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(  # type: ignore[call-arg]
            _env_file=None,
            alerts={"webhooks": ["ftp://a.example.org/x", "https://ok.example.org/", "file:///x"]},
        )
    message = str(refused.value)
    assert "alerts.webhooks[0] must start with http" in message
    assert "alerts.webhooks[2] must start with http" in message


def test_serve_reports_invalid_settings_and_weak_secrets_together(tmp_path: Path) -> None:
    """Before, a settings error (here two malformed numbers) stopped
    start-up alone: the weak pepper and the placeholder password came out only once it
    was fixed (issue 22)."""
    result = serve(
        {
            "DOCCHAT_ENV": "production",
            "DOCCHAT_SECURITY__KEY_PEPPER": "abcdefghij" * 4,
            "DOCCHAT_SECURITY__RATE_LIMIT_PER_MINUTE": "lots",
            "DOCCHAT_ALERTS__WEBHOOKS": '["https://ops:changeme@hooks.example.org/a"]',
            "DOCCHAT_ALERTS__WINDOW_S": "-1",
            "DOCCHAT_LLM__REMOTE_API_KEY": "<your-api-key-here>",
        },
        tmp_path,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for problem in (
        "security.rate_limit_per_minute",
        "alerts.window_s",
        "security.key_pepper repeats a block of 10 characters",
        "alerts.webhooks[0] holds a placeholder password",
        "llm.remote_api_key still has a placeholder",
    ):
        assert problem in result.stderr, result.stderr
    assert "abcdefghij" not in result.stderr
    assert "changeme" not in result.stderr
