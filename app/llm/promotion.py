"""The promotion gate: a model is measured before it serves, and refused when it answers
worse than the model in service.

The candidate is loaded (a file that cannot chat is refused with its reason), asked
every question of the gate's sets through the same chat service the API uses, and its
report compared with the active model's recorded one: a quality share that falls by
more than models.gate_tolerance, more errors, or a p95 latency over
models.gate_latency_ratio times the active model's refuses it. The CLI and the admin
API both go through here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.evaluation.answers import AnswerResult, evaluate_answers
from app.evaluation.cases import read_cases
from app.evaluation.retrieval import evaluate_retrieval
from app.evaluation.thresholds import regressions
from app.llm.base import CannotChat, ChatEngine
from app.llm.registry import ModelEntry, ModelRegistry, RegistryError
from app.settings import GateSet, Settings
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
)


class GateRefused(RegistryError):
    """The candidate answers worse than the model in service (or cannot chat)."""

    def __init__(self, name: str, problems: list[str]) -> None:
        super().__init__(f"model {name!r} refused: " + "; ".join(problems))
        self.problems = problems


@dataclass
class GateReport:
    """A model measured on every gate set."""

    model: str
    sha256: str
    sets: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """What the registry keeps."""
        return {"model": self.model, "sha256": self.sha256, "sets": self.sets}


def set_key(entry: dict[str, Any]) -> tuple[str, str]:
    """Which set a report entry measured (its file name and collection)."""
    return Path(entry["file"]).name, entry["collection"]


def compare(candidate: dict[str, Any], baseline: dict[str, Any], settings: Settings) -> list[str]:
    """Where the candidate falls behind the baseline, set by set."""
    old = {set_key(s): s for s in baseline.get("sets", [])}
    problems = []
    for measured in candidate.get("sets", []):
        before = old.get(set_key(measured))
        if before is None:
            continue  # a set the active model was not measured on: nothing to compare
        name = Path(measured["file"]).name
        worse = regressions(
            {k: measured["answers"][k] for k in COMPARED},
            {k: before["answers"][k] for k in COMPARED},
            tolerance=settings.models.gate_tolerance,
            latency_ratio=settings.models.gate_latency_ratio,
        )
        problems += [f"{name}: {w}" for w in worse]
    return problems


class Promotion:
    """Measures models on the gate's sets and activates them when they pass."""

    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        measure: Callable[[ModelEntry, GateSet, Callable[[AnswerResult], None]], dict[str, Any]],
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.measure = measure

    def evaluate(
        self, name: str, progress: Callable[[AnswerResult], None] = lambda r: None
    ) -> GateReport:
        """Measure a registered model on every gate set and record the report."""
        entry = self.registry.get(name)
        self.registry.verify(entry)
        report = GateReport(entry.name, entry.sha256)
        for gate_set in self.settings.models.gate_sets:
            report.sets.append(self.measure(entry, gate_set, progress))
        self.registry.record_report(entry.name, report.as_dict())
        return report

    def problems(self, name: str) -> list[str]:
        """Why `name` may not replace the active model, from the recorded reports
        (empty: it may). A model without a report of its current file is refused."""
        entry = self.registry.get(name)
        if not entry.chat_template:
            return ["it has no chat template: an instruction-tuned model is needed"]
        report = entry.eval_report
        if report is None or report.get("sha256") != entry.sha256:
            return ["it has not been evaluated: run `docchat models evaluate` first"]
        active = self.registry.active()
        if active is None or active.name == entry.name:
            return []
        baseline = active.eval_report
        if baseline is None or baseline.get("sha256") != active.sha256:
            return [f"the active model {active.name!r} has no evaluation to compare with"]
        return compare(report, baseline, self.settings)

    def activate(
        self,
        name: str,
        *,
        actor: str,
        force: bool = False,
        evaluate: bool = True,
        progress: Callable[[AnswerResult], None] = lambda r: None,
    ) -> ModelEntry:
        """Measure (unless `evaluate` is off), gate, and make `name` the model in
        service; GateRefused with the reasons, unless `force`, which is recorded."""
        with gate_audited(self.registry.db, actor, "model.activate", name):
            entry = self.registry.get(name)
            active = self.registry.active()
            if evaluate:
                if active is not None and active.name != name and not _fresh(active):
                    self.evaluate(active.name, progress)  # the baseline, measured alike
                try:
                    self.evaluate(name, progress)
                except CannotChat as exc:
                    if not force:
                        raise GateRefused(name, [str(exc)]) from None
            problems = gate_verdict(name, self.problems(entry.name), force=force)
        return self.registry.activate(
            name, actor=actor, forced=bool(problems), note="; ".join(problems)
        )


@contextmanager
def gate_audited(db: Database, actor: str, action: str, name: str) -> Iterator[None]:
    """Around a gated activation until it is decided: a refusal (RegistryError,
    GateRefused) or any failure goes into the audit trail with its reason, then on up.
    The activation itself audits its success."""
    try:
        yield
    except RegistryError as exc:
        audit.record_in(db, actor, action, name, "refused", str(exc))
        raise
    except Exception as exc:
        audit.record_in(db, actor, action, name, "failed", f"{type(exc).__name__}: {exc}")
        raise


def gate_verdict(name: str, problems: list[str], *, force: bool) -> list[str]:
    """GateRefused with the problems, unless `force` (then they are logged, and
    returned for the activation's record)."""
    if problems and not force:
        raise GateRefused(name, problems)
    if problems:
        log.warning("%s activated by force despite: %s", name, "; ".join(problems))
    return problems


def _fresh(entry: ModelEntry) -> bool:
    return bool(entry.eval_report and entry.eval_report.get("sha256") == entry.sha256)


def measure_with(
    settings: Settings,
    open_engine: Callable[[ModelEntry], ChatEngine],
    components_for: Callable[[ChatEngine, str], Any],
) -> Callable[[ModelEntry, GateSet, Callable[[AnswerResult], None]], dict[str, Any]]:
    """A `measure` that loads the model, asks a set's questions through a chat service
    over the set's collection, and runs the retrieval evaluation on the same set."""

    def measure(
        entry: ModelEntry, gate_set: GateSet, progress: Callable[[AnswerResult], None]
    ) -> dict[str, Any]:
        cases = read_cases(gate_set.file)
        collection = gate_set.collection or settings.vectors.collection
        engine = open_engine(entry)
        try:
            components = components_for(engine, collection)
            if components.vectors.count(collection) == 0:
                raise RegistryError(
                    f"collection {collection!r} is empty: ingest its documents before "
                    f"evaluating on {gate_set.file}"
                )
            answers = asyncio.run(evaluate_answers(components.chat, cases, progress=progress))
            retrieval = evaluate_retrieval(components.chat.retriever, cases, k=5)
        finally:
            engine.close()
        return {
            "file": str(gate_set.file),
            "collection": collection,
            "answers": answers.as_dict(),
            "retrieval": retrieval.as_dict(),
        }

    return measure
