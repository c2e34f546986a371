"""`docchat finetune`: LoRA adapters trained on this machine from a curated dataset,
bound to their base model, gated and served like models."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cli import releases
from app.cli.common import console, err, fail, say
from app.cli.releases import Evaluate, Force, refused_as_failure, registry

if TYPE_CHECKING:
    from app.releases.entries import AdapterEntry
    from app.releases.registry import Registry

app = typer.Typer(no_args_is_help=True)


@app.command("train")
def finetune_train(
    dataset: Annotated[str, typer.Option(help="The dataset to train on (docchat dataset list).")],
    name: Annotated[
        str | None, typer.Option(help="Adapter name (default: DATASET-on-BASE).")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the train split.")] = 2,
    learning_rate: Annotated[float, typer.Option(help="AdamW learning rate.")] = 2e-4,
    rank: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 8,
    alpha: Annotated[float, typer.Option(help="LoRA alpha (scale = alpha / rank).")] = 16.0,
    max_tokens: Annotated[int, typer.Option(help="Tokens per example, at most.")] = 1024,
    seed: Annotated[int, typer.Option(help="Seed of the initial weights and order.")] = 0,
    device: Annotated[
        str | None, typer.Option(help="cpu or cuda (default: a GPU when there is one).")
    ] = None,
) -> None:
    """Train a LoRA adapter for the active base model on a dataset.

    Train a LoRA adapter for the active base model on a dataset's train split and
    register it. Resumes a run that was stopped; needs the `finetune` extra
    (pip install 'docchat\\[finetune]').

    Example: docchat finetune train --dataset support-2026-12
    """
    from app.finetune.train import TrainConfig, TrainingError
    from app.finetune.training_run import train_for_active_base

    try:
        import peft  # noqa: F401
    except ImportError:
        raise fail(
            "training needs transformers and peft: pip install 'docchat[finetune]'"
        ) from None
    config = TrainConfig(
        rank=rank,
        alpha=alpha,
        learning_rate=learning_rate,
        epochs=epochs,
        max_tokens=max_tokens,
        seed=seed,
    )
    with (
        registry() as (settings, models),
        Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=err,
        ) as bar,
    ):
        task = bar.add_task("train", total=None, loss="-")

        def advance(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, loss=f"{loss:.3f}")

        from app.components import active_model

        active_model(settings, models.db)  # registers the configured model on a first use
        say("loading the base model (dequantized to fp32)...")
        try:
            entry = refused_as_failure(
                lambda: train_for_active_base(
                    models.db,
                    settings.data_dir,
                    dataset,
                    config=config,
                    name=name,
                    device=device,
                    progress=advance,
                )
            )
        except (TrainingError, LookupError, ValueError) as exc:
            raise fail(str(exc)) from None
    _show(entry, None)


def _show(entry: AdapterEntry, reasons: list[str] | None) -> None:
    say(entry.name)
    say(f"  file          {entry.path}")
    say(f"  sha256        {entry.sha256}")
    say(f"  base          {entry.base_name} ({entry.base_sha256[:12]}…), {entry.architecture}")
    say(f"  dataset       {entry.dataset_name} ({entry.dataset_sha256[:12]}…)")
    hp = entry.hyperparameters
    say(
        f"  training      rank {hp.get('rank')}, alpha {hp.get('alpha')}, lr "
        f"{hp.get('learning_rate')}, {hp.get('epochs')} epochs, seed {hp.get('seed')}"
    )
    t = entry.training
    say(
        f"  run           {t.get('steps')} steps on {t.get('examples')} examples, loss "
        f"{t.get('first_loss')} -> {t.get('last_loss')}, {t.get('seconds')} s on {t.get('device')}"
    )
    if reasons is not None:
        say("  compatible    " + ("yes" if not reasons else "no: " + "; ".join(reasons)))
    report = entry.eval_report
    if report:
        held = report.get("held_out", {})
        ours, base = held.get("adapter", {}), held.get("base", {})
        say(
            f"  held-out      F1 {ours.get('f1')} (base {base.get('f1')}), close "
            f"{ours.get('close')} (base {base.get('close')}), similarity "
            f"{ours.get('similarity')} (base {base.get('similarity')}) over "
            f"{ours.get('examples')} examples"
        )
    else:
        say("  evaluation    none yet (docchat finetune evaluate)")


def _compatibility(models: Registry) -> Callable[[AdapterEntry], list[str]]:
    from app.releases.entries import compatibility

    active = models.active()
    if active is None:
        return lambda adapter: ["no model is active"]
    return lambda adapter: compatibility(adapter, active.base)


@app.command("list")
def finetune_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """The adapters, which one serves, and whether each fits the active base.

    The adapters, which one serves, and whether each fits the active base model
    (adapters of another base are listed as incompatible, with the reason)."""
    with registry() as (_settings, models):
        entries = models.adapters()
        reasons_of = _compatibility(models)
        active = models.active()
        serving = active.adapter.name if active and active.adapter else None
        rows = [(e, reasons_of(e)) for e in entries]
    if as_json:
        data = [{**e.as_dict(), "active": e.name == serving, "incompatible": r} for e, r in rows]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    if not rows:
        say("no adapters yet: docchat finetune train --dataset NAME")
        return
    table = Table("name", "base", "dataset", "loss", "held-out F1", "status")
    for e, reasons in rows:
        held = (e.eval_report or {}).get("held_out", {}).get("adapter", {})
        status = "active" if e.name == serving else ("ok" if not reasons else "incompatible")
        table.add_row(
            e.name,
            e.base_name,
            e.dataset_name,
            str(e.training.get("last_loss", "")),
            str(held.get("f1", "-")),
            status,
        )
    console.print(table)
    for e, reasons in rows:
        if reasons:
            say(f"{e.name}: " + "; ".join(reasons))


@app.command("show")
def finetune_show(
    name: Annotated[str, typer.Argument(help="Adapter name.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON.")] = False,
) -> None:
    """One adapter: its base, dataset, training run, evaluation and compatibility."""
    with registry() as (_settings, models):
        entry = refused_as_failure(lambda: models.adapter(name))
        reasons = _compatibility(models)(entry)
    if as_json:
        sys.stdout.write(json.dumps({**entry.as_dict(), "incompatible": reasons}, indent=2) + "\n")
        return
    _show(entry, reasons)


@app.command("evaluate")
def finetune_evaluate(name: Annotated[str, typer.Argument(help="Adapter name.")]) -> None:
    """Measure an adapter against the base alone, and record the figures.

    Measure the active base with the adapter on the gate's sets and the dataset's
    held-out split (the base alone too, on the same rows), and record it."""
    releases.evaluate("adapter", name)
    with registry() as (_settings, models):
        entry = models.adapter(name)
        reasons = _compatibility(models)(entry)
    _show(entry, reasons)


@app.command("activate")
def finetune_activate(
    name: Annotated[str, typer.Argument(help="Adapter to serve on the active base.")],
    force: Force = False,
    evaluate: Evaluate = True,
) -> None:
    """Serve an adapter on the active base model through the promotion gate.

    Serve an adapter on the active base model through the promotion gate. Running
    servers switch within models.poll_interval_s; `docchat models rollback` undoes it.

    Example: docchat finetune activate support-2026-12-on-qwen2.5-coder-0.5b-instruct-q4_k_m
    """
    entry = releases.activate("adapter", name, force=force, evaluate=evaluate)
    say(f"active: {entry.release} ({entry.sha256[:12]}, adapter {entry.adapter_sha256 or '-'})")


@app.command("deactivate")
def finetune_deactivate() -> None:
    """Serve the active base model alone again."""
    with registry() as (settings, models):
        entry = refused_as_failure(lambda: releases.gate(settings, models).deactivate(actor="cli"))
    say(f"active: {entry.release}")
