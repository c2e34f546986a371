"""Which catalog model this machine serves within the release gate, and why.

The estimates come from measured speeds kept beside this module (model_speeds.json:
prompt and decode tokens/s per model on 2 CPU cores, and on a GPU), scaled to the cores
seen with exponents that were measured too; every figure that is scaled says so. The
pick is the best-answering model whose estimate fits the gate's thresholds
(loadtests/thresholds.toml) and the memory, never one that answers worse than the
catalog's default (which stays when nothing fits).
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.llm.catalog import CATALOG, DEFAULT_MODEL
from app.llm.hardware import Hardware, probe

if TYPE_CHECKING:
    from app.settings import Settings

SPEEDS_FILE = Path(__file__).with_name("model_speeds.json")


@dataclass(frozen=True)
class Gate:
    """The release gate's thresholds that a speed estimate can be held against (the
    error ratio cannot be estimated). Defaults: loadtests/thresholds.toml."""

    p95_time_to_first_token_ms: float = 20000
    min_answers_per_minute: float = 6

    @classmethod
    def from_file(cls, path: Path) -> Gate:
        gate = tomllib.loads(path.read_text()).get("gate", {})
        missing = [
            k for k in ("p95_time_to_first_token_ms", "min_answers_per_minute") if k not in gate
        ]
        if missing:
            raise ValueError(f"no {', '.join(missing)} in its [gate] table")
        return cls(
            p95_time_to_first_token_ms=float(gate["p95_time_to_first_token_ms"]),
            min_answers_per_minute=float(gate["min_answers_per_minute"]),
        )


@dataclass(frozen=True)
class Workload:
    """What one answer asks of the model, and what the engine keeps in memory."""

    context_tokens: int = 1200  # rag.context_tokens
    answer_tokens: int = 120
    n_ctx: int = 4096
    sequences: int = 6  # llm.parallel + llm.cache_sequences, each n_ctx of KV cache

    def prompt_tokens(self, speeds: dict[str, Any]) -> int:
        line = speeds["prompt_tokens"]
        return round(
            float(line["intercept"]) + float(line["per_context_token"]) * self.context_tokens
        )


@dataclass(frozen=True)
class Estimate:
    """One catalog model on this hardware."""

    name: str
    device: str  # "cpu" or "gpu"
    prompt_tps: float
    decode_tps: float
    first_token_s: float  # one question on an idle server
    answer_s: float
    gate_p95_first_token_s: float  # under the gate's load
    answers_per_minute: float
    memory_bytes: int
    fits: bool
    why_not: list[str]
    basis: str  # where the speeds come from: measured, or how they were scaled

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in vars(self).items()}


@dataclass(frozen=True)
class Recommendation:
    """The pick, why, and every model's estimate."""

    pick: str
    reason: str
    hardware: Hardware
    estimates: list[Estimate]
    prompt_tokens: int
    answer_tokens: int
    gate: Gate
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pick": self.pick,
            "reason": self.reason,
            "hardware": self.hardware.as_dict(),
            "prompt_tokens": self.prompt_tokens,
            "answer_tokens": self.answer_tokens,
            "gate": vars(self.gate),
            "estimates": [e.as_dict() for e in self.estimates],
            "notes": self.notes,
        }


@cache
def speeds() -> dict[str, Any]:
    """The measured figures (model_speeds.json)."""
    loaded: dict[str, Any] = json.loads(SPEEDS_FILE.read_text())
    return loaded


def _cpu_speed(model: dict[str, Any], cores: float, figures: dict[str, Any]) -> tuple[float, ...]:
    measured = figures["cpu"]["cores"]
    scaling = figures["cpu"]["scaling"]
    cap = scaling["max_cores"]
    used = min(cores, cap)
    side = "below" if used < measured else "above"
    prompt = model["prompt_tps"] * (used / measured) ** scaling["prompt"][side]
    decode = model["decode_tps"] * (used / measured) ** scaling["decode"][side]
    return prompt, decode


def _cpu_basis(cores: float, figures: dict[str, Any]) -> str:
    measured = figures["cpu"]["cores"]
    scaling = figures["cpu"]["scaling"]
    if math.isclose(cores, measured):
        return f"measured on {measured} cores"
    used = min(cores, scaling["max_cores"])
    side = "below" if used < measured else "above"
    capped = f" (counted as {used:g}: no gain assumed past it)" if used < cores else ""
    return (
        f"extrapolated from {measured} to {cores:g} cores{capped}: prompt x(cores/"
        f"{measured})^{scaling['prompt'][side]}, decode x(cores/{measured})^"
        f"{scaling['decode'][side]}"
    )


def _gpu_speed(name: str, figures: dict[str, Any]) -> tuple[float, float, str]:
    gpu = figures["gpu"]
    model = gpu["models"].get(name)
    alike = " (this GPU taken to be as fast)"
    if model is not None:
        return model["prompt_tps"], model["decode_tps"], f"measured on an {gpu['card']}{alike}"
    ref_name = gpu["reference"]
    ref = gpu["models"][ref_name]
    mine, theirs = figures["models"][name], figures["models"][ref_name]
    compute = theirs["parameters"] / mine["parameters"]
    traffic = CATALOG[ref_name].size_bytes / CATALOG[name].size_bytes
    basis = (
        f"extrapolated from {ref_name} on an {gpu['card']}{alike}: prompt x{compute:.2f} "
        f"(parameters), decode x{traffic:.2f} (weight bytes)"
    )
    return ref["prompt_tps"] * compute, ref["decode_tps"] * traffic, basis


def memory_needed(name: str, work: Workload) -> int:
    """The model's file, its KV cache for every sequence, and the rest of docchat."""
    figures = speeds()
    kv = int(figures["models"][name]["kv_bytes_per_token"]) * work.n_ctx * work.sequences
    return CATALOG[name].size_bytes + kv + int(figures["memory"]["rest_of_docchat_bytes"])


def estimate(name: str, hardware: Hardware, work: Workload, gate: Gate) -> Estimate:
    """One model's times and memory on this hardware, and whether they pass the gate."""
    figures = speeds()
    if hardware.gpu:
        prompt_tps, decode_tps, basis = _gpu_speed(name, figures)
        device = "gpu"
    else:
        model = figures["cpu"]["models"][name]
        prompt_tps, decode_tps = _cpu_speed(model, hardware.cores, figures)
        basis = _cpu_basis(hardware.cores, figures)
        if "derived" in model:  # not measured alone on a quiet machine: say how it was had
            basis = basis.replace("measured on", "on", 1) + f"; derived: {model['derived']}"
        device = "cpu"
    first = work.prompt_tokens(figures) / prompt_tps
    answer = first + work.answer_tokens / decode_tps
    loaded = first * figures["load"]["p95_first_token_factor"]
    per_minute = 60 / answer  # one at a time: batching only adds to it
    memory = memory_needed(name, work)
    why_not = []
    if loaded * 1000 > gate.p95_time_to_first_token_ms:
        why_not.append(
            f"p95 first token under load ~{loaded:.0f} s > "
            f"{gate.p95_time_to_first_token_ms / 1000:g} s"
        )
    if per_minute < gate.min_answers_per_minute:
        why_not.append(f"~{per_minute:.1f} answers/min < {gate.min_answers_per_minute:g}")
    feature = CATALOG[name].cpu_feature
    if device == "cpu" and feature and feature not in hardware.cpu_flags:
        why_not.append(
            f"its {CATALOG[name].quantization} weights are fast only with the CPU's "
            f"{feature}, which this CPU lacks"
        )
    if memory > hardware.memory_bytes:
        why_not.append(
            f"needs {memory / 2**30:.1f} GiB, {hardware.memory_bytes / 2**30:.1f} GiB usable"
        )
    gpu_part = memory - figures["memory"]["rest_of_docchat_bytes"]
    if device == "gpu" and hardware.gpu_memory_bytes and gpu_part > hardware.gpu_memory_bytes:
        why_not.append(f"needs {gpu_part / 2**30:.1f} GiB of GPU memory")
    return Estimate(
        name=name,
        device=device,
        prompt_tps=prompt_tps,
        decode_tps=decode_tps,
        first_token_s=first,
        answer_s=answer,
        gate_p95_first_token_s=loaded,
        answers_per_minute=per_minute,
        memory_bytes=memory,
        fits=not why_not,
        why_not=why_not,
        basis=basis,
    )


def recommend(
    hardware: Hardware, work: Workload | None = None, gate: Gate | None = None
) -> Recommendation:
    """The best-answering catalog model that fits the gate on this hardware."""
    work = work or Workload()
    gate = gate or Gate()
    figures = speeds()
    rank = {name: figures["models"][name]["quality_rank"] for name in CATALOG}
    # Best answers first; among files that answer alike (one model's weights in two
    # types), the sooner first token first.
    estimates = sorted(
        (estimate(name, hardware, work, gate) for name in CATALOG),
        key=lambda e: (rank[e.name], e.first_token_s),
    )
    # Never below the default: smaller models answer worse (docs/evaluation.md), and
    # the point is to answer better where the hardware allows.
    fitting = [e for e in estimates if e.fits and rank[e.name] <= rank[DEFAULT_MODEL]]
    where = f"{hardware.cores:g} cores" + (" and a GPU" if hardware.gpu else "")
    if fitting:
        pick = fitting[0]
        better = [e for e in estimates if rank[e.name] < rank[pick.name]]
        reason = f"the best-answering catalog model that fits the release gate on {where}"
        if better:
            reason += f"; {better[0].name} does not ({'; '.join(better[0].why_not)})"
        alike = [e for e in fitting if e is not pick and rank[e.name] == rank[pick.name]]
        if alike:
            reason += (
                f"; it answers as {alike[0].name} does, with a first token in "
                f"~{pick.first_token_s:.1f} s instead of ~{alike[0].first_token_s:.1f} s"
            )
    else:
        pick = next(e for e in estimates if e.name == DEFAULT_MODEL)
        reason = (
            f"the catalog's default: no model it may be swapped for fits the release gate on "
            f"{where} (it does not either: {'; '.join(pick.why_not)}; a smaller "
            "rag.context_tokens shortens the prompt)"
        )
    notes = [
        f"a prompt of ~{work.prompt_tokens(figures)} tokens (rag.context_tokens="
        f"{work.context_tokens}) and an answer of {work.answer_tokens} tokens",
        f"p95 first token under the gate's load = one question's first token x "
        f"{figures['load']['p95_first_token_factor']} ({figures['load']['source']})",
    ]
    return Recommendation(
        pick=pick.name,
        reason=reason,
        hardware=hardware,
        estimates=estimates,
        prompt_tokens=work.prompt_tokens(figures),
        answer_tokens=work.answer_tokens,
        gate=gate,
        notes=notes,
    )


def workload(settings: Settings) -> Workload:
    """The workload the settings make: prompt budget, context and KV sequences."""
    llm = settings.llm
    return Workload(
        context_tokens=settings.rag.context_tokens,
        n_ctx=llm.n_ctx,
        sequences=llm.parallel + llm.cache_sequences,
    )


def default_model(settings: Settings) -> tuple[str, str]:
    """The catalog model to serve when none is configured, and why: this machine's
    recommendation with llm.auto_model on, else the catalog's fixed DEFAULT_MODEL."""
    if not settings.llm.auto_model:
        return DEFAULT_MODEL, "llm.auto_model is off: the catalog's default"
    hardware = probe(settings.llm.n_threads, settings.llm.n_gpu_layers)
    chosen = recommend(hardware, workload(settings))
    return chosen.pick, chosen.reason
