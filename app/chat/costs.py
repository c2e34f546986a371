"""What one generation cost, in its span and the metrics."""

from __future__ import annotations

from typing import Any

from app.llm.base import GenerationStats
from app.telemetry.reporter import Telemetry


def record_generation(telemetry: Telemetry, stats: GenerationStats, span: Any) -> None:
    """What one generation cost, in its span and the metrics."""
    metrics = telemetry.metrics
    span.set_attribute("docchat.prompt_tokens", stats.prompt_tokens)
    span.set_attribute("docchat.completion_tokens", stats.completion_tokens)
    span.set_attribute("docchat.finish_reason", stats.finish_reason or "")
    span.end()
    metrics.prompt_tokens.inc(stats.prompt_tokens)
    metrics.completion_tokens.inc(stats.completion_tokens)
    if stats.time_to_first_token_s is not None:
        metrics.stage_duration.labels("prompt").observe(stats.time_to_first_token_s)
        decode_s = stats.total_s - stats.time_to_first_token_s
        if stats.completion_tokens > 1 and decode_s > 0:
            metrics.tokens_per_second.observe((stats.completion_tokens - 1) / decode_s)
    metrics.stage_duration.labels("generate").observe(stats.total_s)
