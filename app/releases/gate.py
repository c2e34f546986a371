"""The release gate: a candidate is measured before it serves, and refused when it
answers worse than what it would replace.

A candidate is a model (served alone) or an adapter (served on the active base model,
and only on the very file it was trained on: refused otherwise, even by force). It is
loaded (a file that cannot chat is refused with its reason), asked every question of
the gate's sets through the same chat service the API uses, and its report compared
with its baseline's recorded one: the active model's for a model, the base alone's for
an adapter. A quality share that falls by more than models.gate_tolerance, more errors,
or a p95 latency over models.gate_latency_ratio times the baseline's refuses it. An
adapter is also measured on its dataset's held-out split (token F1 with the approved
answers, against the base alone on the same rows). The composition root builds the one
gate; the CLI and the admin API both go through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.evaluation.answers import AnswerResult
from app.evaluation.thresholds import regressions
from app.llm.base import CannotChat
from app.releases.entries import AdapterEntry, Kind, ModelEntry, compatibility
from app.releases.errors import GateRefused, IncompatibleAdapter, RegistryError
from app.releases.measure import HeldOut, HeldOutRows, Measure
from app.releases.registry import Registry
from app.settings import ModelSettings
from app.store import audit
from app.store.db import Database

log = logging.getLogger(__name__)

# The figures of a set's report the gate compares (see evaluation/thresholds.py).
COMPARED = (
    "expected",
    "grounded",
    "cited",
    "false_refusals",
    "refused_out_of_scope",
    "errors",
    "first_token_p95_s",
    "total_p95_s",
    "labels_wrong_flagged",
    "labels_right_flagged",
)
# The command that evaluates a candidate of each kind.
EVALUATE = {"model": "docchat models evaluate", "adapter": "docchat finetune evaluate"}
NO_PROGRESS: Callable[[AnswerResult], None] = lambda result: None  # noqa: E731


class Gate:
    """Measures candidate releases and puts them in service when they pass."""

    def __init__(
        self,
        settings: ModelSettings,
        registry: Registry,
        measure: Measure,
        held_out: HeldOut,
        held_out_rows: HeldOutRows,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.measure = measure
        self.held_out = held_out
        self.held_out_rows = held_out_rows

    def base_for(self, adapter: AdapterEntry) -> ModelEntry:
        """The active base model, checked to be the one the adapter was trained on."""
        active = self.registry.active()
        if active is None:
            raise RegistryError("no model is active yet")
        base = active.base
        reasons = compatibility(adapter, base)
        if reasons:
            raise IncompatibleAdapter(adapter.name, base.name, reasons)
        return base

    def candidate(self, kind: Kind, name: str) -> ModelEntry:
        """The release `name` would put in service: the model alone, or the active base
        with the adapter on it."""
        if kind == "model":
            return self.registry.model(name)
        adapter = self.registry.adapter(name)
        return replace(self.base_for(adapter), adapter=adapter)

    def baseline(self, kind: Kind, candidate: ModelEntry) -> ModelEntry | None:
        """What the candidate is compared with: the model in service for a model (None
        when there is none, or it is the candidate), the base alone for an adapter: a
        model, whose own report is compared."""
        if kind == "adapter":
            return candidate.base
        active = self.registry.active()
        return None if active is None or active.name == candidate.name else active.base

    def evaluate(
        self, kind: Kind, name: str, progress: Callable[[AnswerResult], None] = NO_PROGRESS
    ) -> dict[str, Any]:
        """Measure a candidate on every gate set (an adapter also on its held-out split,
        the base alone alongside) and record the report."""
        release = self.candidate(kind, name)
        self.registry.verify(release)
        report: dict[str, Any] = {"model": release.release, "sha256": release.sha256}
        if release.adapter is not None:
            report["adapter_sha256"] = release.adapter.sha256
        report["sets"] = [self.measure(release, s, progress) for s in self.settings.gate_sets]
        if release.adapter is not None:
            rows = self.held_out_rows(release.adapter)
            report["held_out"] = {
                "adapter": self.held_out(release, rows),
                "base": self.held_out(release.base, rows),
            }
        self.registry.record_report(release.adapter or release, report)
        return report

    def reasons(self, kind: Kind, name: str) -> list[str]:
        """Why the candidate may not serve, from the recorded reports (empty: it may).
        A candidate without a report of its current file is refused."""
        release = self.candidate(kind, name)
        if kind == "model" and not release.chat_template:
            return ["it has no chat template: an instruction-tuned model is needed"]
        report = (release.adapter or release).eval_report
        if not _fresh(release, report):
            return [f"it has not been evaluated: run `{EVALUATE[kind]}` first"]
        assert report is not None  # _fresh says so
        if report.get("sha256") != release.sha256:
            return ["it was evaluated on another base file: evaluate it again"]
        reasons = []
        baseline = self.baseline(kind, release)
        if baseline is not None and report["sets"]:
            if not _fresh(baseline, baseline.eval_report):
                role = "active" if kind == "model" else "base"
                reasons.append(
                    f"the {role} model {baseline.name!r} has no evaluation to compare with"
                )
            else:
                reasons += self.compare(report, baseline.eval_report or {})
        if "held_out" in report:
            reasons += held_out_reasons(report["held_out"], self.settings.gate_tolerance)
        return reasons

    def compare(self, candidate: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
        """Where the candidate falls behind the baseline, set by set."""
        old = {set_key(s): s for s in baseline.get("sets", [])}
        reasons = []
        for measured in candidate.get("sets", []):
            before = old.get(set_key(measured))
            if before is None:
                continue  # a set the baseline was not measured on: nothing to compare
            name = Path(measured["file"]).name
            worse = regressions(
                # .get: reports recorded before a figure existed lack it (not compared).
                {k: measured["answers"].get(k) for k in COMPARED},
                {k: before["answers"].get(k) for k in COMPARED},
                tolerance=self.settings.gate_tolerance,
                latency_ratio=self.settings.gate_latency_ratio,
            )
            reasons += [f"{name}: {w}" for w in worse]
        return reasons

    def activate(
        self,
        kind: Kind,
        name: str,
        *,
        actor: str,
        force: bool = False,
        evaluate: bool = True,
        progress: Callable[[AnswerResult], None] = NO_PROGRESS,
    ) -> ModelEntry:
        """Measure (unless `evaluate` is off), gate, and put the candidate in service;
        GateRefused with the reasons, unless `force`, which is recorded."""
        with self._audited(actor, f"{kind}.activate", name):
            release = self.candidate(kind, name)
            if evaluate:
                baseline = self.baseline(kind, release)
                if (
                    baseline is not None
                    and not _fresh(baseline, baseline.eval_report)
                    and self.settings.gate_sets
                ):
                    self.evaluate("model", baseline.name, progress)  # measured alike
                try:
                    self.evaluate(kind, name, progress)
                except CannotChat as exc:
                    if not force:
                        raise GateRefused(kind, name, [str(exc)]) from None
            reasons = self.reasons(kind, name)
            if reasons and not force:
                raise GateRefused(kind, name, reasons)
            if reasons:
                log.warning("%s activated by force despite: %s", name, "; ".join(reasons))
        return self.registry.activate(
            release.name,
            actor=actor,
            forced=bool(reasons),
            note="; ".join(reasons),
            adapter=release.adapter,  # None for a model: it serves alone
        )

    def deactivate(self, *, actor: str) -> ModelEntry:
        """Serve the active base model alone again (it passed its own gate)."""
        active = self.registry.active()
        if active is None or active.adapter is None:
            reason = "no adapter is in service"
            audit.record_in(self.registry.db, actor, "adapter.deactivate", "", "refused", reason)
            raise RegistryError(reason, code="no_adapter")
        return self.registry.activate(
            active.name, actor=actor, note="adapter removed", audited_as="adapter.deactivate"
        )

    @contextmanager
    def _audited(self, actor: str, action: str, name: str) -> Iterator[None]:
        """Around a gated activation until it is decided: a refusal (RegistryError,
        GateRefused) or any failure goes into the audit trail with its reason, then on
        up. The activation itself audits its success."""
        db: Database = self.registry.db
        try:
            yield
        except RegistryError as exc:
            audit.record_in(db, actor, action, name, "refused", str(exc))
            raise
        except Exception as exc:
            audit.record_in(db, actor, action, name, "failed", f"{type(exc).__name__}: {exc}")
            raise


def set_key(entry: dict[str, Any]) -> tuple[str, str]:
    """Which set a report entry measured (its file name and collection)."""
    return Path(entry["file"]).name, entry["collection"]


def held_out_reasons(held: dict[str, Any], tolerance: float) -> list[str]:
    """Where the adapter answers the held-out split worse than the base alone. A share
    over n examples moves by 1/n when one answer changes, so a drop within one example
    is not held against a small split."""
    reasons = []
    n = held["adapter"].get("examples") or 0
    for figure, allowed in (("f1", tolerance), ("close", max(tolerance, 1 / max(n, 1)))):
        ours, theirs = held["adapter"].get(figure), held["base"].get(figure)
        if ours is not None and theirs is not None and ours < theirs - allowed - 1e-9:
            reasons.append(
                f"held-out split ({n} examples): {figure} {ours:.2f} against the base's "
                f"{theirs:.2f}"
            )
    return reasons


def _fresh(release: ModelEntry, report: dict[str, Any] | None) -> bool:
    """Whether `report` measured the release's current files (an adapter's report, the
    adapter's too)."""
    if not report:
        return False
    if release.adapter is not None:
        return report.get("adapter_sha256") == release.adapter.sha256
    return report.get("sha256") == release.sha256
