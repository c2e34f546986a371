"""Probes for orchestrators: /healthz (the process answers), /readyz (it can serve)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.api.deps import ComponentsDep
from app.llm.base import EngineUnavailable
from app.store.db import ping


class Health(BaseModel):
    """The process answers."""

    status: str


class Readiness(BaseModel):
    """Whether the server can answer, with each dependency's check."""

    status: str = Field(description='"ready" or "unavailable".')
    checks: dict[str, str]


router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Health:
    """Alive: the event loop answers."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is unavailable."}},
)
async def readyz(components: ComponentsDep) -> JSONResponse:
    """Ready: model loaded (or its server reachable), vector store and database reachable."""
    checks: dict[str, Any] = {"model": components.engine.model_id}
    ok = True
    probes: list[tuple[str, Callable[[], None]]] = [
        ("database", lambda: ping(components.db.engine)),
        ("vectors", components.vectors.ping),
    ]
    if components.settings.llm.backend == "remote":
        probes.append(("model_server", components.engine.ping))
    for name, probe in probes:
        try:
            await asyncio.wait_for(asyncio.to_thread(probe), timeout=5)
            checks[name] = "ok"
        except EngineUnavailable as exc:
            checks[name] = f"unavailable ({exc})"  # written to be shown
            ok = False
        except Exception as exc:
            # The exception's class only: its text may carry a URL with a password.
            checks[name] = f"unavailable ({type(exc).__name__})"
            ok = False
    return JSONResponse(
        {"status": "ready" if ok else "unavailable", "checks": checks},
        status_code=200 if ok else 503,
    )
