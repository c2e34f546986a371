"""GET /metrics in the Prometheus text format."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import ComponentsDep, get_settings, require_scope

METRICS_PATH = "/metrics"
_admin_check = require_scope("admin").dependency


def metrics_access(request: Request) -> None:
    """Admin scope when `telemetry.metrics_require_key` is on; open otherwise."""
    if get_settings(request).telemetry.metrics_require_key:
        _admin_check(request)


metrics_access.required_scope = "admin"  # type: ignore[attr-defined]
router = APIRouter(tags=["metrics"], dependencies=[Depends(metrics_access)])


@router.get(
    METRICS_PATH,
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "The Prometheus text exposition format.",
        }
    },
)
async def metrics(components: ComponentsDep) -> Response:
    """Every docchat metric (docs/observability.md lists them)."""
    registry = components.telemetry.metrics.registry
    # Off the loop: the ingest figures are read from the database at scrape time.
    body = await asyncio.to_thread(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
