"""OpenTelemetry traces: a span per request, child spans per answer stage. Exported
over OTLP when an endpoint is set; otherwise spans are not recorded at all."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from app.settings import TelemetrySettings


def make_tracer(
    settings: TelemetrySettings, exporter: SpanExporter | None = None
) -> tuple[trace.Tracer, TracerProvider | None]:
    """A tracer and its provider (to shut down); a no-op tracer when nothing exports.

    The provider is the app's own, not the global one, so two apps (or tests with an
    in-memory exporter) do not share spans.
    """
    if exporter is None and settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint)
    if exporter is None:
        return trace.NoOpTracer(), None
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider.get_tracer("docchat"), provider
