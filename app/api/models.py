"""The model registry over HTTP (admin scope): list, show, activate through the
promotion gate with a hot swap, roll back.

An activation that measures the candidate takes minutes, so it runs as a job: the
request answers 202 with the job, and GET /api/admin/model-jobs/{id} tells how it
ended. With `evaluate: false` the gate judges the recorded evaluations at once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.api.deps import ComponentsDep, IdentityDep, actor_of, admin_scope
from app.api.errors import ERROR_RESPONSES
from app.api.problems import ApiError
from app.components import Components, load_model
from app.llm.base import CannotChat, ChatEngine
from app.llm.hosting import ModelHost
from app.llm.promotion import GateRefused, Promotion, measure_with
from app.llm.registry import IncompatibleAdapter, ModelEntry, ModelRegistry, RegistryError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=admin_scope())


class ActivateRequest(BaseModel):
    """How to activate a model."""

    force: bool = Field(False, description="Activate even if the gate refuses (recorded).")
    evaluate: bool = Field(
        True,
        description="Measure the candidate on the gate's sets now (a job of minutes); "
        "false: judge the recorded evaluations at once.",
    )


class ModelOut(BaseModel):
    """A registered model."""

    name: str
    path: str
    sha256: str
    size_bytes: int
    architecture: str
    parameters: int | None
    quantization: str
    context_length: int | None
    chat_template: bool
    source: str
    added_at: str
    active: bool
    adapter: str | None = Field(None, description="The LoRA adapter served on it, if any.")
    evaluated_at: str | None
    eval_report: dict[str, Any] | None = Field(
        description="The latest evaluation on the gate's sets (per set: answers, retrieval)."
    )


class JobOut(BaseModel):
    """An activation running in the server, or how it ended."""

    id: str
    model: str
    status: str = Field(description="running, activated, refused or failed.")
    problems: list[str] = Field(description="Why the gate refused (or what failed).")
    forced: bool = False


@dataclass
class Job:
    """One activation the server runs."""

    id: str
    model: str
    status: str = "running"
    problems: list[str] = field(default_factory=list)
    forced: bool = False
    task: asyncio.Task[None] | None = None

    def out(self) -> JobOut:
        """As the API shows it."""
        return JobOut(
            id=self.id,
            model=self.model,
            status=self.status,
            problems=self.problems,
            forced=self.forced,
        )


def model_out(entry: ModelEntry) -> ModelOut:
    """A registry entry in the API's shape."""
    return ModelOut.model_validate(entry.as_dict())


def host_of(request: Request) -> ModelHost:
    """The server's model host; 409 when this server's model cannot be swapped."""
    host: ModelHost | None = getattr(request.app.state, "model_host", None)
    if host is None:
        raise ApiError(
            409,
            "not_swappable",
            "this server's model is not in the registry (a remote model server)",
        )
    return host


HostDep = Annotated[ModelHost, Depends(host_of)]


def promotion_in(components: Components) -> Promotion:
    """The gate, measuring inside this server with its own stores and embedder."""
    settings = components.settings

    def components_for(engine: ChatEngine, collection: str) -> Components:
        scoped = settings.model_copy(
            update={"vectors": settings.vectors.model_copy(update={"collection": collection})}
        )
        return components.using(engine=engine, settings=scoped)

    measure = measure_with(settings, lambda e: load_model(settings, e), components_for)
    return Promotion(settings, ModelRegistry(components.db), measure)


def jobs_of(request: Request) -> dict[str, Job]:
    """The activations this server has run (kept in memory)."""
    jobs: dict[str, Job] | None = getattr(request.app.state, "model_jobs", None)
    if jobs is None:
        jobs = request.app.state.model_jobs = {}
    return jobs


@router.get("/models", responses=ERROR_RESPONSES)
def list_models(components: ComponentsDep) -> list[ModelOut]:
    """Every registered model, the active one marked."""
    return [model_out(e) for e in ModelRegistry(components.db).entries()]


@router.get("/models/{name}", responses=ERROR_RESPONSES)
def show_model(name: str, components: ComponentsDep) -> ModelOut:
    """One model with its latest evaluation."""
    try:
        return model_out(ModelRegistry(components.db).get(name))
    except RegistryError as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@router.post(
    "/models/{name}/activate",
    responses={
        **ERROR_RESPONSES,
        202: {"model": JobOut, "description": "Measuring; poll the job."},
        409: {"description": "Refused by the gate, or not swappable."},
    },
)
async def activate_model(
    name: str,
    body: ActivateRequest,
    components: ComponentsDep,
    host: HostDep,
    identity: IdentityDep,
    request: Request,
) -> Any:
    """Put a model in service through the promotion gate, swapped in while answers run:
    the ones in flight end on the old model, new ones start on the new one."""
    promotion = promotion_in(components)
    actor = actor_of(identity)
    try:
        await asyncio.to_thread(promotion.registry.get, name)
    except RegistryError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    activate = partial(
        promotion.activate, name, actor=actor, force=body.force, evaluate=body.evaluate
    )
    if not body.evaluate:
        return model_out(await run_gate(activate, host))
    return start_job(request, name, activate, host, body.force)


async def run_gate(activate: Callable[[], ModelEntry], host: ModelHost) -> ModelEntry:
    """Run a gated activation (blocking: off the event loop), then swap this server to
    the registry's release; the gate's answer as an API error."""
    try:
        entry = await asyncio.to_thread(activate)
    except GateRefused as exc:
        raise ApiError(409, "gate_refused", str(exc)) from None
    except IncompatibleAdapter as exc:
        raise ApiError(409, "incompatible_adapter", str(exc)) from None
    except (RegistryError, CannotChat) as exc:
        raise ApiError(409, "model_unusable", str(exc)) from None
    await host.sync()  # swap now; the other replicas follow within their poll interval
    return entry


def start_job(
    request: Request, name: str, activate: Callable[[], ModelEntry], host: ModelHost, force: bool
) -> JSONResponse:
    """Run a measuring activation in the background; 202 with the job to poll."""
    job = Job(uuid.uuid4().hex, name)
    jobs_of(request)[job.id] = job

    async def run() -> None:
        try:
            await run_gate(activate, host)
            job.status, job.forced = "activated", force
        except ApiError as exc:
            refused = exc.type in ("gate_refused", "incompatible_adapter")
            job.status, job.problems = ("refused" if refused else "failed"), [exc.message]
        except Exception as exc:
            log.exception("activating %s failed", job.model)
            job.status, job.problems = "failed", [type(exc).__name__]

    job.task = asyncio.create_task(run())
    return JSONResponse(job.out().model_dump(), status_code=202)


@router.get("/model-jobs/{job_id}", responses=ERROR_RESPONSES)
async def model_job(job_id: str, request: Request) -> JobOut:
    """How an activation is going, or how it ended."""
    job = jobs_of(request).get(job_id)
    if job is None:
        raise ApiError(404, "not_found", "no such job")
    return job.out()


@router.post("/models/rollback", responses={**ERROR_RESPONSES, 409: {"description": "None."}})
async def rollback_model(
    components: ComponentsDep, host: HostDep, identity: IdentityDep
) -> ModelOut:
    """Return to the model in service before the current one, swapped in while answers
    run (no gate: it served before)."""
    registry = ModelRegistry(components.db)
    actor = actor_of(identity)
    try:
        entry = await asyncio.to_thread(lambda: registry.rollback(actor=actor))
    except RegistryError as exc:
        raise ApiError(409, "nothing_to_roll_back", str(exc)) from None
    await host.sync()
    return model_out(entry)
