"""The promotion gate for adapters: the same gate as for models, plus the held-out split.

An adapter is served only on the base it was trained on (refused otherwise, even by
force). Before it serves, the base with the adapter is measured on the gate's question
sets (compared with the base model's own recorded report, as a model is) and on its
dataset's held-out split (token F1 with the approved answers, compared with the base
alone on the same rows; held_out.py): worse by
more than models.gate_tolerance on either refuses it, unless forced (recorded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.evaluation.answers import AnswerResult
from app.llm.adapters import AdapterEntry, AdapterRegistry, compatibility
from app.llm.base import ChatEngine
from app.llm.promotion import Promotion, compare, gate_audited, gate_verdict
from app.llm.registry import IncompatibleAdapter, ModelEntry, RegistryError
from app.store import audit
from app.store.db import Database

# Measures a release (a model with an adapter, or without) on held-out rows.
HeldOut = Callable[[ModelEntry, list[list[dict[str, str]]]], dict[str, Any]]


class AdapterPromotion:
    """Measures adapters and puts them in service on the active base model."""

    def __init__(
        self,
        promotion: Promotion,
        adapters: AdapterRegistry,
        held_out: HeldOut,
        held_out_rows: Callable[[AdapterEntry], list[list[dict[str, str]]]],
    ) -> None:
        self.promotion = promotion
        self.models = promotion.registry
        self.adapters = adapters
        self.held_out = held_out
        self.held_out_rows = held_out_rows

    def base_of(self, adapter: AdapterEntry) -> ModelEntry:
        """The active base model, checked to be the one the adapter was trained on."""
        active = self.models.active()
        if active is None:
            raise RegistryError("no model is active yet")
        base = replace(active, adapter=None)
        reasons = compatibility(adapter, base)
        if reasons:
            raise IncompatibleAdapter(adapter.name, base.name, reasons)
        return base

    def evaluate(
        self, name: str, progress: Callable[[AnswerResult], None] = lambda r: None
    ) -> dict[str, Any]:
        """Measure the active base with the adapter on the gate sets and the held-out
        split (the base alone too, on the held-out rows), and record the report."""
        adapter = self.adapters.get(name)
        base = self.base_of(adapter)
        self.adapters.verify(adapter)
        candidate = replace(base, adapter=adapter)
        gate_sets = self.promotion.settings.models.gate_sets
        rows = self.held_out_rows(adapter)
        report = {
            "model": candidate.release,
            "sha256": base.sha256,
            "adapter_sha256": adapter.sha256,
            "sets": [self.promotion.measure(candidate, s, progress) for s in gate_sets],
            "held_out": {
                "adapter": self.held_out(candidate, rows),
                "base": self.held_out(base, rows),
            },
        }
        self.adapters.record_report(name, report)
        return report

    def problems(self, name: str) -> list[str]:
        """Why the adapter may not serve on the active base, from the recorded reports."""
        adapter = self.adapters.get(name)
        base = self.base_of(adapter)
        report = adapter.eval_report
        if report is None or report.get("adapter_sha256") != adapter.sha256:
            return ["it has not been evaluated: run `docchat finetune evaluate` first"]
        if report.get("sha256") != base.sha256:
            return ["it was evaluated on another base file: evaluate it again"]
        problems = []
        baseline = base.eval_report
        if report["sets"]:
            if baseline is None or baseline.get("sha256") != base.sha256:
                problems.append(f"the base model {base.name!r} has no evaluation to compare with")
            else:
                problems += compare(report, baseline, self.promotion.settings)
        return problems + held_out_problems(
            report["held_out"], self.promotion.settings.models.gate_tolerance
        )

    def activate(
        self,
        name: str,
        *,
        actor: str,
        force: bool = False,
        evaluate: bool = True,
        progress: Callable[[AnswerResult], None] = lambda r: None,
    ) -> ModelEntry:
        """Gate the adapter and serve it on the active base (GateRefused with the
        reasons unless `force`; an adapter of another base is refused regardless)."""
        with gate_audited(self.models.db, actor, "adapter.activate", name):
            adapter = self.adapters.get(name)
            base = self.base_of(adapter)
            if evaluate:
                if self.promotion.settings.models.gate_sets and not _fresh(base):
                    self.promotion.evaluate(base.name, progress)  # the baseline, alike
                self.evaluate(name, progress)
            problems = gate_verdict(name, self.problems(name), force=force)
        return self.models.activate(
            base.name,
            actor=actor,
            forced=bool(problems),
            note="; ".join(problems),
            adapter=self.adapters.get(name),
        )

    def deactivate(self, *, actor: str) -> ModelEntry:
        """Serve the active base model alone again (it passed its own gate)."""
        active = self.models.active()
        if active is None or active.adapter is None:
            reason = "no adapter is in service"
            audit.record_in(self.models.db, actor, "adapter.deactivate", "", "refused", reason)
            raise RegistryError(reason)
        return self.models.activate(
            active.name, actor=actor, note="adapter removed", audited_as="adapter.deactivate"
        )


def held_out_problems(held: dict[str, Any], tolerance: float) -> list[str]:
    """Where the adapter answers the held-out split worse than the base alone. A share
    over n examples moves by 1/n when one answer changes, so a drop within one example
    is not held against a small split."""
    problems = []
    n = held["adapter"].get("examples") or 0
    for figure, allowed in (("f1", tolerance), ("close", max(tolerance, 1 / max(n, 1)))):
        ours, theirs = held["adapter"].get(figure), held["base"].get(figure)
        if ours is not None and theirs is not None and ours < theirs - allowed - 1e-9:
            problems.append(
                f"held-out split ({n} examples): {figure} {ours:.2f} against the base's "
                f"{theirs:.2f}"
            )
    return problems


def _fresh(entry: ModelEntry) -> bool:
    return bool(entry.eval_report and entry.eval_report.get("sha256") == entry.sha256)


def adapter_gate(
    promotion: Promotion,
    db: Database,
    data_dir: Path,
    load: Callable[[ModelEntry], ChatEngine],
    embed: Callable[[list[str]], list[list[float]]],
    *,
    max_tokens: int,
) -> AdapterPromotion:
    """The adapter gate over a deployment: releases loaded with `load`, the held-out
    rows read from the adapter's own dataset (refused if it is not the one trained on)."""
    from app.finetune.held_out import held_out_report
    from app.finetune.training_run import dataset_rows

    def held_out(entry: ModelEntry, rows: list[list[dict[str, str]]]) -> dict[str, Any]:
        engine = load(entry)
        try:
            return held_out_report(engine, rows, embed, max_tokens=max_tokens)
        finally:
            engine.close()

    def rows_of(adapter: AdapterEntry) -> list[list[dict[str, str]]]:
        sha256, rows = dataset_rows(db, data_dir, adapter.dataset_name, "held-out")
        if sha256 != adapter.dataset_sha256:
            raise RegistryError(
                f"dataset {adapter.dataset_name!r} is not the one {adapter.name!r} was trained on"
            )
        return rows

    return AdapterPromotion(promotion, AdapterRegistry(db), held_out, rows_of)
