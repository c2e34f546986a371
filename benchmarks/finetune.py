"""Train a LoRA adapter for the active base model on a dataset, then measure it as the
gate does: the dataset's held-out split and the gate's question sets, with the adapter
and with the base alone (figures, not pass/fail).

    DOCCHAT_DATA_DIR=/tmp/ft .venv/bin/python benchmarks/finetune.py \\
        --dataset docs-curated --epochs 2 --out benchmarks/finetune_2core.json

The data directory needs the documents ingested, the examples curated and the dataset
built (docs/finetune.md shows the commands). Training time is per optimizer step (one
example); everything runs on this machine, the GPU when torch sees one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.components import active_model, build_gate, open_database  # noqa: E402
from app.finetune.train import TrainConfig  # noqa: E402
from app.finetune.training_run import train_for_active_base  # noqa: E402
from app.settings import load_settings  # noqa: E402


def row(name: str, report: dict[str, Any]) -> str:
    held = report["held_out"][name]
    cells = [name, f"{held['f1']:.3f}", f"{held['close']:.2f}", f"{held['similarity']:.3f}"]
    if name == "adapter":
        for measured in report["sets"]:
            a = measured["answers"]
            cells.append(f"{a['expected']:.2f} / {a['grounded']:.2f} / {a['total_p95_s']:.1f} s")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--name", help="Adapter name (default: DATASET-on-BASE).")
    parser.add_argument("--out", type=Path, help="Write the figures as JSON here too.")
    args = parser.parse_args()

    settings = load_settings()
    db = open_database(settings)
    active_model(settings, db)  # a fresh data directory: the configured model, registered
    config = TrainConfig(epochs=args.epochs, learning_rate=args.learning_rate, rank=args.rank)
    began = time.monotonic()
    adapter = train_for_active_base(
        db,
        settings.data_dir,
        args.dataset,
        config=config,
        name=args.name,
        progress=lambda step, total, loss: print(
            f"step {step}/{total} loss {loss:.3f}", flush=True
        ),
    )
    trained_s = time.monotonic() - began
    gate = build_gate(settings, db)
    models = gate.registry
    base = models.active()
    assert base is not None
    if settings.models.gate_sets and not (
        base.eval_report and base.eval_report.get("sha256") == base.sha256
    ):
        gate.evaluate("model", base.name)
    report = gate.evaluate("adapter", adapter.name)
    base_sets = (models.model(base.name).eval_report or {}).get("sets", [])

    t = adapter.training
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, device {t['device']}")
    print(
        f"adapter {adapter.name}: {t['steps']} steps on {t['examples']} examples, "
        f"{t['seconds_per_step']} s per step ({t['seconds']} s training, {trained_s:.0f} s "
        f"with loading and writing), loss {t['first_loss']} -> {t['last_loss']}"
    )
    header = "| on the held-out split | F1 | close | similarity |"
    header += "".join(
        f" {Path(s['file']).name}: expected / grounded / p95 |" for s in report["sets"]
    )
    print(header)
    print("|" + " --- |" * (4 + len(report["sets"])))
    base_cells = [
        f" {s['answers']['expected']:.2f} / {s['answers']['grounded']:.2f} / "
        f"{s['answers']['total_p95_s']:.1f} s |"
        for s in base_sets
    ]
    print(row("base", report) + "".join(base_cells))
    print(row("adapter", report))
    problems = gate.reasons("adapter", adapter.name)
    print("gate:", "passes" if not problems else "refuses: " + "; ".join(problems))
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "machine": platform.machine(),
                    "cpus": os.cpu_count(),
                    "adapter": adapter.as_dict(),
                    "report": report,
                    "base_sets": base_sets,
                    "gate_problems": problems,
                },
                indent=2,
            )
            + "\n"
        )
    db.close()


if __name__ == "__main__":
    main()
