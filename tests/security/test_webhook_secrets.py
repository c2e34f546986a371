"""Alert webhook URLs are secrets: masked in `config show`, known to the redactor and
the output guard, never logged whole; and their credentials never silently replace
the webhook token."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config_report import settings_report
from app.security.output_guard import OutputGuard, new_canary
from app.security.redaction import Redactor
from app.security.secrets import setting_secrets
from app.settings import AlertSettings, Settings
from app.telemetry.alerts import WebhookSender
from tests.conftest import run_docchat
from tests.telemetry.test_alerts import Receiver

SLACK_PATH = "/services/T0ALERTS1/B0ALERTS2/wEbHoOkToKeN0123456789"
MARK = "wEbHoOkToKeN"
SLACK = "https://hooks.slack.com" + SLACK_PATH
WITH_USER_INFO = "https://alerts:Hunter2-canary-pw@alerts.example.org/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()


def settings_with(webhooks: list[str], token: str | None = None) -> Settings:
    alerts: dict[str, object] = {"webhooks": webhooks}
    if token is not None:
        alerts["webhook_token"] = token
    return Settings(_env_file=None, alerts=alerts)  # type: ignore[arg-type]


def test_config_show_prints_scheme_and_host_only(tmp_path: Path) -> None:
    rows = {r["name"]: r for r in settings_report(settings_with([SLACK, WITH_USER_INFO]))}
    shown = rows["alerts.webhooks"]["value"]
    assert shown == str(["https://hooks.slack.com/…", "https://alerts.example.org/…"])
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DOCCHAT_")},
        "DOCCHAT_SECRETS_DIR": str(tmp_path / "none"),
        "DOCCHAT_ALERTS__WEBHOOKS": json.dumps([SLACK, WITH_USER_INFO]),
        "COLUMNS": "200",
    }
    for args in (["--json"], []):
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "config", "show", *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        )
        assert "hooks.slack.com/…" in result.stdout
        for part in (MARK, "Hunter2", "slack.com/services", "example.org/hook"):
            assert part not in result.stdout + result.stderr


def test_webhook_urls_are_secret_values_for_redactor_and_guard() -> None:
    values = setting_secrets(settings_with([SLACK, WITH_USER_INFO]))
    assert {SLACK, SLACK_PATH, WITH_USER_INFO, "Hunter2-canary-pw"} <= set(values)
    redactor = Redactor(values)
    line = f"posting to {SLACK} and https://alerts.example.org/hook as Hunter2-canary-pw"
    assert MARK not in redactor.redact(line)
    assert "Hunter2" not in redactor.redact(line)
    guard = OutputGuard(values, new_canary(), [])
    assert guard.violation(f"The alert hook lives at {SLACK_PATH}.") == "secret value"
    # The URL stripped of its credentials is still the webhook's address: a secret too.
    assert guard.violation("Alerts go to https://alerts.example.org/hook.") == "secret value"
    assert guard.violation("Alerts go to the /hook route.") is None
    # A short path is an ordinary word, not a credential: it is not blanked out.
    assert "/alerts" not in setting_secrets(settings_with(["https://example.org/alerts"]))


def test_credentials_in_a_url_and_a_token_are_refused_together() -> None:
    with pytest.raises(ValidationError) as refused:
        settings_with(["https://example.org/ok", WITH_USER_INFO], token="tok-canary-0123456789")
    message = str(refused.value)
    assert "alerts.webhooks[1] holds credentials" in message
    assert "alerts.webhook_token" in message
    for secret in ("Hunter2", "tok-canary", "alerts.example.org"):
        assert secret not in message  # the error names the setting, not its value
    with pytest.raises(ValidationError, match=r"alerts.webhooks\[0\] must start with http"):
        AlertSettings(webhooks=["ftp://example.org/x"])


def test_serve_refuses_them_with_a_clear_error(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DOCCHAT_DATA_DIR": str(tmp_path / "data"),
        "DOCCHAT_SECRETS_DIR": str(tmp_path / "none"),
        "DOCCHAT_ALERTS__WEBHOOKS": json.dumps([WITH_USER_INFO]),
        "DOCCHAT_ALERTS__WEBHOOK_TOKEN": "tok-canary-0123456789",
    }
    result = run_docchat("serve", "--port", "1", env=env, timeout=120)
    assert result.returncode == 1
    assert "alerts.webhooks[0] holds credentials" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Hunter2" not in result.stderr
    assert "tok-canary" not in result.stderr


def test_a_url_with_credentials_sends_them_as_basic_auth(receiver: Receiver) -> None:
    """Without a token, the URL's user-info is the credential, sent as Basic auth."""
    port = receiver.url.split(":")[2].split("/")[0]
    url = f"http://alerts:Hunter2-canary-pw@127.0.0.1:{port}/hook"
    asyncio.run(WebhookSender([url], None, retries=0).send({"alert": "a", "status": "firing"}))
    expected = base64.b64encode(b"alerts:Hunter2-canary-pw").decode()
    assert receiver.received == [({"alert": "a", "status": "firing"}, f"Basic {expected}")]
    with pytest.raises(ValueError, match="cannot be combined"):
        WebhookSender([url], "a-token", retries=0)


def test_a_failed_delivery_logs_the_host_not_the_url(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.fail_next = 5
    secret_url = receiver.url.replace("/hook", SLACK_PATH)
    sender = WebhookSender([secret_url], None, retries=1, base_delay=0.01)
    with caplog.at_level(logging.DEBUG):
        asyncio.run(sender.send({"alert": "error_rate", "status": "firing"}))
    # docchat's own records (httpx's are silenced below WARNING by logs.install).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("app."))
    assert "alert error_rate not delivered to http://127.0.0.1:" in logged
    assert SLACK_PATH not in logged


def test_webhook_token_still_goes_as_bearer(receiver: Receiver) -> None:
    sender = WebhookSender([receiver.url], "tok-0123456789abcdef", retries=0)
    asyncio.run(sender.send({"alert": "a", "status": "firing"}))
    assert receiver.received[0][1] == "Bearer tok-0123456789abcdef"


def test_webhook_urls_stay_out_of_the_settings_repr() -> None:
    """They stay plain strings (httpx needs them), yet a repr of the settings hides them."""
    settings = settings_with([SLACK])
    assert MARK not in repr(settings)
    assert MARK not in repr(settings.alerts)


def test_named_source_credentials_are_secret_values_for_redactor_and_guard() -> None:
    """sources.credentials is a dict of secrets: each one is redacted and guarded like
    any other (before, only SecretStr fields themselves were found)."""
    token = "ghp_S0urceT0kenCanary123456789"
    settings = Settings(_env_file=None, sources={"credentials": {"docs-repo": token}})  # type: ignore[call-arg]
    values = setting_secrets(settings)
    assert token in values
    assert token not in Redactor(values).redact(f"cloning with {token}")
    guard = OutputGuard(values, new_canary(), [])
    assert guard.violation(f"The token is {token}.") == "secret value"
