"""A candidate's gate report as a table: each figure the gate compares, the candidate's
and its baseline's (the model in service for a model, the base alone for an adapter),
and whether the gate holds it against the candidate; with the gate's reasons, so the
console shows the very judgement `activate` would make (Gate.reasons)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.evaluation.thresholds import regressions
from app.releases.entries import Kind
from app.releases.errors import IncompatibleAdapter
from app.releases.gate import COMPARED, Gate, held_out_reasons, set_key


def gate_table(gate: Gate, kind: Kind, name: str) -> dict[str, Any]:
    """{candidate, baseline, reasons, passes, rows: [{set, figure, candidate, baseline,
    worse}]} from the recorded reports; an adapter of another base has its reason and
    no rows. An unknown name raises as the registry does."""
    try:
        release = gate.candidate(kind, name)
    except IncompatibleAdapter as exc:
        return {
            "candidate": name,
            "baseline": None,
            "reasons": [str(exc)],
            "passes": False,
            "rows": [],
        }
    report = (release.adapter or release).eval_report or {}
    baseline = gate.baseline(kind, release)
    before = {
        set_key(s): s for s in ((baseline.eval_report or {}) if baseline else {}).get("sets", [])
    }
    settings = gate.settings
    rows: list[dict[str, Any]] = []
    for measured in report.get("sets", []):
        old = before.get(set_key(measured), {}).get("answers", {})
        for figure in COMPARED:
            ours, theirs = measured["answers"].get(figure), old.get(figure)
            if ours is None and theirs is None:
                continue
            worse = regressions(
                {figure: ours},
                {figure: theirs},
                tolerance=settings.gate_tolerance,
                latency_ratio=settings.gate_latency_ratio,
            )
            rows.append(_row(Path(measured["file"]).name, figure, ours, theirs, bool(worse)))
    held = report.get("held_out")
    if held:
        for figure in ("f1", "close"):
            ours, theirs = held["adapter"].get(figure), held["base"].get(figure)
            one = {
                "adapter": {figure: ours, "examples": held["adapter"].get("examples")},
                "base": {figure: theirs},
            }
            worse = held_out_reasons(one, settings.gate_tolerance)
            rows.append(_row("held-out split", figure, ours, theirs, bool(worse)))
    reasons = gate.reasons(kind, name)
    return {
        "candidate": release.release,
        "baseline": baseline.release if baseline else None,
        "reasons": reasons,
        "passes": not reasons,
        "rows": rows,
    }


def _row(where: str, figure: str, ours: Any, theirs: Any, worse: bool) -> dict[str, Any]:
    return {"set": where, "figure": figure, "candidate": ours, "baseline": theirs, "worse": worse}
