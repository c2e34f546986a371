"""Watching a running docchat: logs (logging), metrics and traces (telemetry), the
in-app alerts (alerts) and the anomaly monitors (anomalies).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from app.settings.validation import SECTION_CONFIG, has_user_info


class LoggingSettings(BaseModel):
    """Logs."""

    model_config = SECTION_CONFIG

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level that is logged."
    )
    format: Literal["json", "console"] | None = Field(
        None,
        description="json: one JSON object per line; console: readable lines. Empty: "
        "console in development, json otherwise.",
    )


class TelemetrySettings(BaseModel):
    """Metrics and traces."""

    model_config = SECTION_CONFIG

    metrics_require_key: bool = Field(
        False,
        description="Whether /metrics needs an admin API key (when authentication is on). "
        "Off: Prometheus scrapes without one; keep the port internal.",
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OpenTelemetry collector for traces (OTLP/gRPC, e.g. "
        "http://otel-collector:4317). Empty: tracing is off.",
    )
    service_name: str = Field("docchat", description="service.name of the exported traces.")


class AlertSettings(BaseModel):
    """Rolling-window monitors and the webhooks their alerts go to."""

    model_config = SECTION_CONFIG

    webhooks: list[str] = Field(
        default_factory=list,
        repr=False,
        description="URLs that receive alerts as JSON POSTs. Treated as secrets (a "
        "Slack-style URL is its own credential): masked to scheme and host in `config show`, "
        "redacted from logs and answers. Credentials in a URL (https://user:pass@host/…) are "
        "sent as HTTP Basic auth to that URL; they cannot be combined with webhook_token.",
    )
    webhook_token: SecretStr | None = Field(
        None,
        description="Sent to the webhooks as `Authorization: Bearer <token>`. Refused "
        "together with a webhook URL that holds its own credentials: one request can carry "
        "only one Authorization header, so one of them would be dropped unseen.",
    )
    window_s: float = Field(300, gt=0, description="Length of the rolling window, seconds.")
    min_events: int = Field(
        10, ge=1, description="Events a window needs before any rate in it can alert."
    )
    error_rate: float = Field(0.05, ge=0, le=1, description="Share of 5xx responses that alerts.")
    latency_p95_s: float = Field(
        30.0, gt=0, description="95th percentile of chat request time that alerts, seconds."
    )
    ungrounded_rate: float = Field(
        0.3, ge=0, le=1, description="Share of answers not supported by their sources that alerts."
    )
    no_context_rate: float = Field(
        0.5, ge=0, le=1, description="Share of questions the docs did not cover that alerts."
    )
    min_retrieval_score: float = Field(
        0.35, description="Mean top retrieval score below which retrieval is alerted as weak."
    )
    cooldown_s: float = Field(
        600, ge=0, description="After an alert, the same alert is not sent again for this long."
    )
    check_interval_s: float = Field(15, gt=0, description="How often the monitors are evaluated.")
    retries: int = Field(3, ge=0, description="Retries of a failed webhook delivery (back-off).")

    @model_validator(mode="after")
    def _webhooks_are_usable(self) -> AlertSettings:
        # Errors name the URL by index only: the URL itself is a secret. Every URL's
        # problems at once, not the first one's.
        problems = []
        for index, url in enumerate(self.webhooks):
            name = f"alerts.webhooks[{index}]"
            if not url.startswith(("http://", "https://")):
                problems.append(f"{name} must start with http:// or https://")
            elif self.webhook_token is not None and has_user_info(url):
                problems.append(
                    f"{name} holds credentials (user:password@) and alerts.webhook_token is "
                    "set too: use one of them (the URL's credentials go as Basic auth, the "
                    "token as a Bearer header; a request carries only one)"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class AnomalySettings(BaseModel):
    """Monitors that learn what is normal from the database and alert on departures."""

    model_config = SECTION_CONFIG

    enabled: bool = Field(True, description="Judge the signals against their baselines.")
    method: Literal["seasonal", "ewma"] = Field(
        "seasonal",
        description="seasonal: the baseline is the median (and MAD) of the same window at "
        "the same time of day on each of the past history_days days, so a daily cycle is "
        "normal. ewma: an exponentially weighted mean and variance of the consecutive past "
        "windows.",
    )
    window_s: int = Field(
        3600, ge=300, description="Seconds of answers and ratings each judgement covers."
    )
    history_days: int = Field(
        7, ge=1, le=60, description="Days of history the baseline is learned from."
    )
    min_events: int = Field(
        20,
        ge=5,
        description="Events (answers, or ratings for the thumbs-down rate) a window needs "
        "before its figure counts, now or in the baseline.",
    )
    min_baseline_windows: int = Field(
        10,
        ge=3,
        description="Past windows with enough events a baseline needs; until then the "
        "signal is only learned, never alerted.",
    )
    threshold: float = Field(
        4.0,
        gt=0,
        description="Robust z (departure from the baseline in units of its scale, on the "
        "signal's bad side) above which a signal alerts.",
    )
    resolve_threshold: float = Field(
        2.0, ge=0, description="An alerting signal resolves once its z is back below this."
    )
    ewma_alpha: float = Field(
        0.1, gt=0, le=1, description="Weight of the newest window in the ewma method."
    )
    check_interval_s: float = Field(
        60, gt=0, description="How often the signals are judged (each time reads the database)."
    )
    drop_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="documents_drop alerts when ingest runs of the last drop_window_s "
        "deleted more than this share of a collection's documents.",
    )
    drop_window_s: int = Field(
        3600, ge=60, description="Seconds of ingest runs the documents_drop alert looks at."
    )

    @model_validator(mode="after")
    def _resolve_below_threshold(self) -> AnomalySettings:
        if self.resolve_threshold > self.threshold:
            raise ValueError("anomalies.resolve_threshold must not exceed anomalies.threshold")
        return self
