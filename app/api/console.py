"""What the admin console reads beyond the admin routes it shares with the CLI: the
health series (from the database and this server's alerts, so it works without
Prometheus) and the audit trail as CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.api.deps import ComponentsDep, SessionDep, admin_scope
from app.api.errors import ERROR_RESPONSES
from app.api.problems import ApiError
from app.store import audit
from app.telemetry.bands import bands
from app.telemetry.series import hourly, ingest_volume

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=admin_scope())


class HealthOut(BaseModel):
    """The console's health page."""

    hours: list[dict[str, Any]] = Field(
        description="Per hour, oldest first: answers, seconds_p50/p95, refused, "
        "ungrounded, ratings, down (shares 0-1; null without data)."
    )
    baselines: dict[str, list[dict[str, float] | None]] = Field(
        description="Per series (refused, ungrounded, down, seconds_p50), per hour: what the "
        "anomaly monitors took as normal, {center, low, high} (the band an alert fires "
        "outside), or null with too little history; {} with the monitors off."
    )
    ingest: list[dict[str, Any]] = Field(
        description="Ingest runs of the span, oldest first, each with its source (a "
        'source\'s name, "upload" or "ingest") and counts.'
    )
    firing: list[str] = Field(description="Threshold alerts firing now on this server.")
    alerts: list[dict[str, Any]] = Field(
        description="The latest alerts this server sent (firing and resolved), newest first."
    )
    queue_rejections: int = Field(description="Questions refused with a full queue since start.")


@router.get("/health", responses=ERROR_RESPONSES)
async def health(
    components: ComponentsDep,
    hours: Annotated[int, Query(ge=1, le=24 * 31, description="How many hours back.")] = 48,
) -> HealthOut:
    """Answers per hour, their time, refusals, ungrounded answers and thumbs-down, with
    the ingest runs and the alerts: the console's charts."""
    db, settings = components.db, components.settings
    series, runs, normal = await asyncio.gather(
        asyncio.to_thread(hourly, db, hours),
        asyncio.to_thread(ingest_volume, db, hours, None, settings.data_dir),
        asyncio.to_thread(bands, settings.anomalies, db, hours),
    )
    manager = components.telemetry.alerts
    alerts = list(reversed(manager.recent)) if manager is not None else []
    firing = manager.firing() if manager is not None else []
    return HealthOut(
        hours=series,
        baselines=normal,
        ingest=runs,
        firing=firing,
        alerts=alerts[:50],
        queue_rejections=int(components.telemetry.metrics.rejections()),
    )


CSV_COLUMNS = ("id", "created_at", "actor", "action", "target", "outcome", "reason", "detail")


@router.get("/audit.csv", responses=ERROR_RESPONSES, response_class=Response)
def audit_csv(
    session: SessionDep,
    since: Annotated[datetime | None, Query(description="At or after (ISO 8601).")] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> Response:
    """The audit trail as CSV (the same filters as /api/admin/audit), newest first."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    try:
        found = audit.events(session, since=since, action=action, actor=actor, limit=limit)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"since: {exc}") from None
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for event in found:
        row = audit.as_dict(event)
        row["detail"] = json.dumps(row["detail"], sort_keys=True)
        # A cell a spreadsheet would run as a formula is quoted as text.
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="docchat-audit.csv"'},
    )


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
