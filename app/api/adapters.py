"""LoRA adapters over HTTP (admin scope): list with their compatibility with the active
base model, show, activate through the adapter gate with a hot swap, deactivate.

Training runs from the CLI (`docchat finetune train`: minutes to hours of a machine's
cores, not a request's). An activation that measures runs as a job like a model's;
GET /api/admin/model-jobs/{id} tells how it ended; `POST /api/admin/models/rollback`
undoes it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.api.deps import ComponentsDep, IdentityDep, actor_of, admin_scope
from app.api.errors import ERROR_RESPONSES
from app.api.models import (
    ActivateRequest,
    HostDep,
    JobOut,
    ModelOut,
    model_out,
    run_gate,
    start_job,
)
from app.api.models import promotion_in as model_promotion_in
from app.api.problems import ApiError
from app.components import Components, load_model
from app.finetune.gate import AdapterPromotion, adapter_gate
from app.llm.adapters import AdapterEntry, AdapterRegistry, compatibility
from app.llm.registry import IncompatibleAdapter, ModelEntry, ModelRegistry, RegistryError

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=admin_scope())


class AdapterOut(BaseModel):
    """A registered adapter."""

    name: str
    path: str
    sha256: str
    size_bytes: int
    base_name: str
    base_sha256: str
    architecture: str
    dimensions: dict[str, int]
    dataset_name: str
    dataset_sha256: str
    hyperparameters: dict[str, Any]
    training: dict[str, Any] = Field(description="Steps, losses, seconds, device.")
    created_at: str
    evaluated_at: str | None
    eval_report: dict[str, Any] | None = Field(
        description="Gate sets and held-out split, the base alone alongside."
    )
    active: bool = Field(description="Served on the active base model now.")
    incompatible: list[str] = Field(
        description="Why it cannot serve on the active base model (empty: it can)."
    )


def adapter_out(entry: AdapterEntry, active: ModelEntry | None) -> AdapterOut:
    """An adapter in the API's shape, judged against the active base."""
    reasons = (
        compatibility(entry, replace(active, adapter=None)) if active else ["no model is active"]
    )
    serving = (
        active is not None and active.adapter is not None and active.adapter.name == entry.name
    )
    return AdapterOut.model_validate(
        {**entry.as_dict(), "active": serving, "incompatible": reasons}
    )


def gate_in(components: Components) -> AdapterPromotion:
    """The adapter gate, measuring inside this server with its stores and embedder."""
    settings = components.settings
    return adapter_gate(
        model_promotion_in(components),
        components.db,
        settings.data_dir,
        lambda entry: load_model(settings, entry),
        components.embedder.embed,
        max_tokens=settings.llm.max_tokens,
    )


@router.get("/adapters", responses=ERROR_RESPONSES)
def list_adapters(components: ComponentsDep) -> list[AdapterOut]:
    """Every adapter; those trained on another base than the active one say why they
    cannot serve."""
    active = ModelRegistry(components.db).active()
    return [adapter_out(e, active) for e in AdapterRegistry(components.db).entries()]


@router.get("/adapters/{name}", responses=ERROR_RESPONSES)
def show_adapter(name: str, components: ComponentsDep) -> AdapterOut:
    """One adapter with its training run and latest evaluation."""
    try:
        entry = AdapterRegistry(components.db).get(name)
    except RegistryError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    return adapter_out(entry, ModelRegistry(components.db).active())


@router.post(
    "/adapters/{name}/activate",
    responses={
        **ERROR_RESPONSES,
        202: {"model": JobOut, "description": "Measuring; poll the job."},
        409: {"description": "Refused by the gate, trained on another base, or not swappable."},
    },
)
async def activate_adapter(
    name: str,
    body: ActivateRequest,
    components: ComponentsDep,
    host: HostDep,
    identity: IdentityDep,
    request: Request,
) -> Any:
    """Serve an adapter on the active base model through the gate, swapped in while
    answers run. An adapter of another base is refused whatever `force` says."""
    gate = gate_in(components)
    actor = actor_of(identity)
    try:
        adapter = await asyncio.to_thread(gate.adapters.get, name)
        await asyncio.to_thread(gate.base_of, adapter)
    except IncompatibleAdapter as exc:
        raise ApiError(409, "incompatible_adapter", str(exc)) from None
    except RegistryError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    activate = partial(gate.activate, name, actor=actor, force=body.force, evaluate=body.evaluate)
    if not body.evaluate:
        return model_out(await run_gate(activate, host))
    return start_job(request, name, activate, host, body.force)


@router.post("/adapters/deactivate", responses={**ERROR_RESPONSES, 409: {"description": "None."}})
async def deactivate_adapter(
    components: ComponentsDep, host: HostDep, identity: IdentityDep
) -> ModelOut:
    """Serve the active base model alone again."""
    gate = gate_in(components)
    actor = actor_of(identity)
    try:
        entry = await asyncio.to_thread(lambda: gate.deactivate(actor=actor))
    except RegistryError as exc:
        raise ApiError(409, "no_adapter", str(exc)) from None
    await host.sync()
    return model_out(entry)
