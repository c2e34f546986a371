"""The promotion gate for adapters: the same gate as for models, plus the held-out split.

An adapter is served only on the base it was trained on (refused otherwise, even by
force). Before it serves, the base with the adapter is measured on the gate's question
sets (compared with the base model's own recorded report, as a model is) and on its
dataset's held-out split (compared with the base alone on the same rows): worse by
more than models.gate_tolerance on either refuses it, unless forced (recorded).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from app.evaluation.answers import AnswerResult
from app.llm.adapters import AdapterEntry, AdapterRegistry, compatibility
from app.llm.promotion import GateRefused, Promotion, compare
from app.llm.registry import IncompatibleAdapter, ModelEntry, RegistryError

log = logging.getLogger(__name__)

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
        held = report["held_out"]
        tolerance = self.promotion.settings.models.gate_tolerance
        for figure in ("similarity", "close"):
            ours, theirs = held["adapter"].get(figure), held["base"].get(figure)
            if ours is not None and theirs is not None and ours < theirs - tolerance:
                problems.append(
                    f"held-out split: {figure} {ours:.2f} against the base's {theirs:.2f}"
                )
        return problems

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
        adapter = self.adapters.get(name)
        base = self.base_of(adapter)
        if evaluate:
            if self.promotion.settings.models.gate_sets and not _fresh(base):
                self.promotion.evaluate(base.name, progress)  # the baseline, measured alike
            self.evaluate(name, progress)
        problems = self.problems(name)
        if problems and not force:
            raise GateRefused(name, problems)
        if problems:
            log.warning("adapter %s activated by force despite: %s", name, "; ".join(problems))
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
            raise RegistryError("no adapter is in service")
        return self.models.activate(active.name, actor=actor, note="adapter removed")


def _fresh(entry: ModelEntry) -> bool:
    return bool(entry.eval_report and entry.eval_report.get("sha256") == entry.sha256)
