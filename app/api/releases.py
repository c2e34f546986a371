"""Releases over HTTP (admin scope): the registered models and adapters, activation
through the release gate with a hot swap, rollback, and serving the base alone again.

An activation that measures the candidate takes minutes, so it runs as a job: the
request answers 202 with the job, and GET /api/admin/model-jobs/{id} tells how it
ended. With `evaluate: false` the gate judges the recorded evaluations at once.
Training an adapter runs from the CLI (`docchat finetune train`: minutes to hours of a
machine's cores, not a request's).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.api.deps import ComponentsDep, IdentityDep, actor_of, admin_scope
from app.api.errors import ERROR_RESPONSES
from app.api.problems import ApiError
from app.components import Components
from app.llm.hosting import ModelHost
from app.releases.entries import AdapterEntry, Kind, ModelEntry, compatibility
from app.releases.errors import GateRefused, IncompatibleAdapter
from app.releases.report import gate_table
from common.errors import DocchatError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=admin_scope())


class ActivateRequest(BaseModel):
    """How to activate a model or an adapter."""

    force: bool = Field(False, description="Activate even if the gate refuses (recorded).")
    evaluate: bool = Field(
        True,
        description="Measure the candidate on the gate's sets now (a job of minutes); "
        "false: judge the recorded evaluations at once.",
    )


class RegisteredOut(BaseModel):
    """What every registered file has."""

    name: str
    path: str
    sha256: str
    size_bytes: int
    evaluated_at: str | None
    eval_report: dict[str, Any] | None = Field(
        description="The latest evaluation (per gate set: answers, retrieval; an "
        "adapter's held-out split, the base alone alongside)."
    )


class RegisteredModelOut(RegisteredOut):
    """A registered model."""

    architecture: str
    parameters: int | None
    quantization: str
    context_length: int | None
    chat_template: bool
    source: str
    added_at: str
    active: bool
    adapter: str | None = Field(None, description="The LoRA adapter served on it, if any.")


class AdapterOut(RegisteredOut):
    """A registered adapter."""

    base_name: str
    base_sha256: str
    architecture: str
    dimensions: dict[str, int]
    dataset_name: str
    dataset_sha256: str
    hyperparameters: dict[str, Any]
    training: dict[str, Any] = Field(description="Steps, losses, seconds, device.")
    created_at: str
    active: bool = Field(description="Served on the active base model now.")
    incompatible: list[str] = Field(
        description="Why it cannot serve on the active base model (empty: it can)."
    )


class ActivationJobOut(BaseModel):
    """An activation running in the server, or how it ended."""

    id: str
    model: str
    status: str = Field(description="running, activated, refused or failed.")
    problems: list[str] = Field(description="Why the gate refused (or what failed).")
    forced: bool = False


ACTIVATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    202: {"model": ActivationJobOut, "description": "Measuring; poll the job."},
    409: {"description": "Refused by the gate, trained on another base, or not swappable."},
}


@dataclass
class ActivationJob:
    """One activation the server runs."""

    id: str
    model: str
    status: str = "running"
    problems: list[str] = field(default_factory=list)
    forced: bool = False
    task: asyncio.Task[None] | None = None

    def out(self) -> ActivationJobOut:
        """As the API shows it."""
        return ActivationJobOut(
            id=self.id,
            model=self.model,
            status=self.status,
            problems=self.problems,
            forced=self.forced,
        )


def model_out(entry: ModelEntry) -> RegisteredModelOut:
    """A registered model in the API's shape."""
    return RegisteredModelOut.model_validate(entry.as_dict())


def adapter_out(entry: AdapterEntry, active: ModelEntry | None) -> AdapterOut:
    """An adapter in the API's shape, judged against the active base."""
    reasons = compatibility(entry, active.base) if active else ["no model is active"]
    serving = (
        active is not None and active.adapter is not None and active.adapter.name == entry.name
    )
    return AdapterOut.model_validate(
        {**entry.as_dict(), "active": serving, "incompatible": reasons}
    )


def host_of(request: Request) -> ModelHost[ModelEntry]:
    """The server's model host; 409 when this server's model cannot be swapped."""
    host: ModelHost[ModelEntry] | None = getattr(request.app.state, "model_host", None)
    if host is None:
        raise ApiError(
            409,
            "not_swappable",
            "this server's model is not in the registry (a remote model server)",
        )
    return host


HostDep = Annotated[ModelHost[ModelEntry], Depends(host_of)]


def jobs_of(request: Request) -> dict[str, ActivationJob]:
    """The activations this server has run (kept in memory)."""
    jobs: dict[str, ActivationJob] | None = getattr(request.app.state, "model_jobs", None)
    if jobs is None:
        jobs = request.app.state.model_jobs = {}
    return jobs


@router.get("/models", responses=ERROR_RESPONSES)
def list_models(components: ComponentsDep) -> list[RegisteredModelOut]:
    """Every registered model, the active one marked."""
    return [model_out(e) for e in components.gate.registry.models()]


@router.get("/models/{name}", responses=ERROR_RESPONSES)
def show_model(name: str, components: ComponentsDep) -> RegisteredModelOut:
    """One model with its latest evaluation."""
    return model_out(components.gate.registry.model(name))


@router.get("/adapters", responses=ERROR_RESPONSES)
def list_adapters(components: ComponentsDep) -> list[AdapterOut]:
    """Every adapter; those trained on another base than the active one say why they
    cannot serve."""
    registry = components.gate.registry
    active = registry.active()
    return [adapter_out(e, active) for e in registry.adapters()]


@router.get("/adapters/{name}", responses=ERROR_RESPONSES)
def show_adapter(name: str, components: ComponentsDep) -> AdapterOut:
    """One adapter with its training run and latest evaluation."""
    registry = components.gate.registry
    return adapter_out(registry.adapter(name), registry.active())


ACTIVATES: dict[Kind, str] = {
    "model": "Put a model in service through the gate, swapped in while answers run: the "
    "ones in flight end on the old model, new ones start on the new one.",
    "adapter": "Serve an adapter on the active base model through the gate, swapped in "
    "while answers run. An adapter of another base is refused whatever `force` says.",
}


def activation_route(kind: Kind) -> Callable[..., Awaitable[Any]]:
    """POST /{kind}s/{name}/activate: a gated activation of a model or an adapter, at
    once without measuring, or as a job that measures."""

    async def activate(
        name: str,
        body: ActivateRequest,
        components: ComponentsDep,
        host: HostDep,
        identity: IdentityDep,
        request: Request,
    ) -> Any:
        return await gated(request, kind, name, body, components, host, actor_of(identity))

    return activate


for _kind, _doc in ACTIVATES.items():
    router.add_api_route(
        f"/{_kind}s/{{name}}/activate",
        activation_route(_kind),
        methods=["POST"],
        name=f"activate_{_kind}",  # the audit trail's action: api.activate_model, ...
        summary=f"Activate {_kind.capitalize()}",
        description=_doc,
        responses=ACTIVATE_RESPONSES,
    )


async def gated(
    request: Request,
    kind: Kind,
    name: str,
    body: ActivateRequest,
    components: Components,
    host: ModelHost[ModelEntry],
    actor: str,
) -> Any:
    """A gated activation: at once without measuring, or as a job that measures."""
    gate = components.gate
    await asyncio.to_thread(gate.candidate, kind, name)  # known, and fit to serve on
    run = partial(gate.activate, kind, name, actor=actor, force=body.force, evaluate=body.evaluate)
    if not body.evaluate:
        return model_out(await run_gate(run, host))
    return start_job(request, name, run, host, body.force)


async def run_gate(activate: Callable[[], ModelEntry], host: ModelHost[ModelEntry]) -> ModelEntry:
    """Run a gated activation (blocking: off the event loop), then swap this server to
    the release in service. The gate's refusals say what they mean (app/releases/errors.py)."""
    entry = await asyncio.to_thread(activate)
    await host.sync()  # swap now; the other replicas follow within their poll interval
    return entry


def start_job(
    request: Request,
    name: str,
    activate: Callable[[], ModelEntry],
    host: ModelHost[ModelEntry],
    force: bool,
) -> JSONResponse:
    """Run a measuring activation in the background; 202 with the job to poll."""
    job = ActivationJob(uuid.uuid4().hex, name)
    jobs_of(request)[job.id] = job

    async def run() -> None:
        try:
            await run_gate(activate, host)
            job.status, job.forced = "activated", force
        except DocchatError as exc:
            refused = exc.code in (GateRefused.code, IncompatibleAdapter.code)
            job.status, job.problems = ("refused" if refused else "failed"), [str(exc)]
        except Exception as exc:
            log.exception("activating %s failed", job.model)
            job.status, job.problems = "failed", [type(exc).__name__]

    job.task = asyncio.create_task(run())
    return JSONResponse(job.out().model_dump(), status_code=202)


@router.get("/model-jobs/{job_id}", responses=ERROR_RESPONSES)
async def model_job(job_id: str, request: Request) -> ActivationJobOut:
    """How an activation is going, or how it ended."""
    job = jobs_of(request).get(job_id)
    if job is None:
        raise ApiError(404, "not_found", "no such job")
    return job.out()


@router.post("/models/rollback", responses={**ERROR_RESPONSES, 409: {"description": "None."}})
async def rollback_model(
    components: ComponentsDep, host: HostDep, identity: IdentityDep
) -> RegisteredModelOut:
    """Return to the release in service before the current one, swapped in while
    answers run (no gate: it served before)."""
    registry, actor = components.gate.registry, actor_of(identity)
    return await ungated(lambda: registry.rollback(actor=actor), host)


@router.post("/adapters/deactivate", responses={**ERROR_RESPONSES, 409: {"description": "None."}})
async def deactivate_adapter(
    components: ComponentsDep, host: HostDep, identity: IdentityDep
) -> RegisteredModelOut:
    """Serve the active base model alone again."""
    gate, actor = components.gate, actor_of(identity)
    return await ungated(lambda: gate.deactivate(actor=actor), host)


async def ungated(
    change: Callable[[], ModelEntry], host: ModelHost[ModelEntry]
) -> RegisteredModelOut:
    """A change to a release that served before (no gate), off the event loop, then
    this server swapped to it."""
    entry = await asyncio.to_thread(change)
    await host.sync()
    return model_out(entry)


class GateRowOut(BaseModel):
    """One figure the gate compares."""

    set: str = Field(description="The gate set's file, or the held-out split.")
    figure: str
    candidate: float | None
    baseline: float | None
    worse: bool = Field(description="The gate holds this figure against the candidate.")


class GateReportOut(BaseModel):
    """A candidate's recorded figures against its baseline's, and the gate's verdict."""

    candidate: str
    baseline: str | None = Field(description="The release compared with (None: nothing).")
    reasons: list[str] = Field(description="Why the gate would refuse it now (empty: passes).")
    passes: bool
    rows: list[GateRowOut]


@router.get("/gate/{kind}/{name}", responses=ERROR_RESPONSES)
def gate_report(kind: Kind, name: str, components: ComponentsDep) -> GateReportOut:
    """The gate's judgement of a candidate from the recorded evaluations, as a table:
    what `activate` without measuring would decide, and why."""
    return GateReportOut.model_validate(gate_table(components.gate, kind, name))
