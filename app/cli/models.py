"""`docchat models`: the chat models as versioned releases (add, pull, evaluate,
activate through the promotion gate, roll back)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from app.cli import releases
from app.cli.common import console, fail, load, say
from app.cli.releases import Evaluate, Force, bytes_bar, refused_as_failure, registry

if TYPE_CHECKING:  # the commands' own imports wait until they run: --help stays fast
    from app.releases.entries import ModelEntry

app = typer.Typer(no_args_is_help=True)


def _show(entry: ModelEntry) -> None:
    say(f"{entry.name}{'  (active)' if entry.active else ''}")
    say(f"  file          {entry.path}")
    say(f"  sha256        {entry.sha256}")
    say(f"  size          {entry.size_bytes / 2**20:.1f} MiB")
    say(f"  architecture  {entry.architecture}, {_params(entry.parameters)} parameters")
    say(f"  quantization  {entry.quantization}")
    say(f"  context       {entry.context_length or '?'} tokens")
    say(f"  chat template {'yes' if entry.chat_template else 'no'}")
    say(f"  source        {entry.source}, added {entry.added_at:%Y-%m-%d %H:%M}")
    report = entry.eval_report
    if not report:
        say("  evaluation    none yet (docchat models evaluate)")
        return
    for measured in report.get("sets", []):
        a = measured["answers"]
        say(
            f"  {Path(measured['file']).name} on {measured['collection']}: "
            f"expected {a['expected']:.2f}  grounded {a['grounded']:.2f}  cited "
            f"{a['cited']:.2f}  false refusals {a['false_refusals']:.2f}  out-of-scope "
            f"refused {a['refused_out_of_scope']:.2f}  p95 {a['total_p95_s']:.1f} s"
        )


def _params(count: int | None) -> str:
    if not count:
        return "?"
    return f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"


@app.command("add")
def models_add(
    path: Annotated[Path, typer.Argument(help="A GGUF file.")],
    name: Annotated[str | None, typer.Option(help="Name (default: the file name).")] = None,
) -> None:
    """Register a GGUF file as a model release, pinned by its sha256.

    Example: docchat models add ~/models/qwen2.5-3b-instruct-q4_k_m.gguf --name qwen-3b
    """
    with registry() as (_settings, models):
        size = path.stat().st_size if path.is_file() else 0
        with bytes_bar(f"hashing {path.name}", size) as advance:
            entry = refused_as_failure(lambda: models.add_model(path, name=name, progress=advance))
    _show(entry)


@app.command("pull")
def models_pull(
    name: Annotated[
        str | None,
        typer.Argument(help="A catalog name (default: `docchat models recommend`'s pick)."),
    ] = None,
) -> None:
    """Install a catalog model into the data directory and register it.

    Install a model from the catalog into the data directory and register it; its
    hash is checked before anything uses it.

    Example: docchat models pull qwen2.5-coder-1.5b-instruct-q4_k_m
    """
    from app.llm.catalog import CATALOG, PullError, pull
    from app.llm.recommend import default_model

    if name is None:
        name, why = default_model(load())
        say(f"{name}: {why}")
    model = CATALOG.get(name)
    if model is None:
        raise fail(f"no catalog model {name!r}; known: {', '.join(CATALOG)}")
    with registry() as (settings, models):
        with bytes_bar(f"pulling {name}", model.size_bytes) as advance:
            try:
                path = pull(model, settings.data_dir / "models", progress=advance)
            except PullError as exc:
                raise fail(str(exc)) from None
        existing = models.find_model(model.sha256)
        if existing is not None:
            say(f"{name} is registered already, as {existing.name}")
            return
        entry = refused_as_failure(
            lambda: models.add_model(path, name=name, source=f"catalog:{name}")
        )
    _show(entry)


@app.command("catalog")
def models_catalog() -> None:
    """The models docchat knows how to install, with their licences."""
    from app.llm.catalog import CATALOG

    table = Table(title="Model catalog (docchat models pull NAME)")
    for column in ("name", "model", "size", "licence", "note"):
        table.add_column(column)
    for model in CATALOG.values():
        table.add_row(
            Text(model.name),
            Text(model.title),
            f"{model.size_bytes / 2**20:.0f} MiB",
            Text(model.license),
            Text(model.note),
        )
    console.print(table)


@app.command("recommend")
def models_recommend(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    thresholds: Annotated[
        Path | None,
        typer.Option(
            help="The gate's thresholds (TOML with a [gate] table); default: the "
            "release gate's own, loadtests/thresholds.toml."
        ),
    ] = None,
) -> None:
    """The catalog model this machine serves within the release gate, and why.

    The cores (cgroup quota and affinity respected), memory and GPU seen, and for each
    catalog model the estimated time to first token and per answer, from measured
    speeds (scaled to this machine, which the output says), against the gate. With no
    llm.model_path, a first start serves the pick (llm.auto_model).

    Example: docchat models recommend --json
    """
    from app.llm.hardware import probe
    from app.llm.recommend import Gate, recommend, workload

    settings = load()
    try:
        gate = Gate.from_file(thresholds) if thresholds else Gate()
    except (OSError, ValueError) as exc:  # tomllib's errors are ValueErrors
        raise fail(f"cannot read the gate's thresholds from {thresholds}: {exc}") from None
    found = recommend(
        probe(settings.llm.n_threads, settings.llm.n_gpu_layers), workload(settings), gate
    )
    configured = settings.llm.model_path
    if configured is not None:
        found.notes.append(f"llm.model_path is set ({configured}): it serves, not the pick")
    elif not settings.llm.auto_model:
        found.notes.append("llm.auto_model is off: a first start serves the catalog's default")
    found.notes.append("once a model is active, the registry decides (docchat models list)")
    if as_json:
        sys.stdout.write(json.dumps(found.as_dict(), indent=2) + "\n")
        return
    hw = found.hardware
    say(f"cores   {hw.cores:g} ({hw.cores_why})")
    say(f"memory  {hw.memory_bytes / 2**30:.1f} GiB ({hw.memory_why})")
    say(f"GPU     {'yes' if hw.gpu else 'no'} ({hw.gpu_why})")
    gate_s = found.gate.p95_time_to_first_token_ms / 1000
    table = Table(
        title=f"Estimates (gate: p95 first token <= {gate_s:g} s, "
        f">= {found.gate.min_answers_per_minute:g} answers/min)"
    )
    for column in (
        "model",
        "first token",
        "answer",
        "p95 first token, gate load",
        "answers/min",
        "memory",
        "fits?",
    ):
        table.add_column(column)
    for e in found.estimates:
        table.add_row(
            Text(e.name + ("  <- pick" if e.name == found.pick else "")),
            f"{e.first_token_s:.1f} s",
            f"{e.answer_s:.1f} s",
            f"{e.gate_p95_first_token_s:.1f} s",
            f"{e.answers_per_minute:.1f}",
            f"{e.memory_bytes / 2**30:.1f} GiB",
            Text("yes" if e.fits else "no: " + "; ".join(e.why_not)),
        )
    console.print(table)
    say(f"pick: {found.pick}: {found.reason}")
    for e in found.estimates:
        say(f"speeds  {e.name} ({e.device}): {e.basis}")
    for note in found.notes:
        say(f"note    {note}")


@app.command("list")
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Registered models, the active one marked."""
    with registry() as (_settings, models):
        entries = models.models()
    if as_json:
        sys.stdout.write(json.dumps([e.as_dict() for e in entries], indent=2) + "\n")
        return
    if not entries:
        # A fresh data folder: the first `serve` registers the configured model.
        console.print(
            "No chat model is registered yet. `docchat serve` registers the configured one "
            "(llm.model_path, or the catalog's default, pulled) when it first starts; "
            "`docchat models pull` installs the default now, `docchat models catalog` lists "
            "the others and `docchat models add FILE.gguf` registers a file of your own."
        )
        return
    table = Table(title="Chat models")
    for column in ("", "name", "params", "quant", "size", "sha256", "evaluated"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            "*" if e.active else "",
            Text(e.name),
            _params(e.parameters),
            e.quantization,
            f"{e.size_bytes / 2**20:.0f} MiB",
            e.sha256[:12],
            f"{e.evaluated_at:%Y-%m-%d %H:%M}" if e.evaluated_at else "-",
        )
    console.print(table)


@app.command("show")
def models_show(
    name: Annotated[str | None, typer.Argument(help="Model (default: the active one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One model: its file, what the file says about itself, its latest evaluation."""
    with registry() as (_settings, models):
        entry = refused_as_failure(lambda: models.model(name) if name else models.active())
        history = models.history()
    if entry is None:
        raise fail("no model is active yet: start the server once, or docchat models activate")
    if as_json:
        sys.stdout.write(json.dumps(entry.as_dict(), indent=2) + "\n")
        return
    _show(entry)
    mine = [a for a in history if a.model_name == entry.name]
    for a in mine[-5:]:
        flag = " (forced)" if a.forced else ""
        say(f"  {a.action}{flag} {a.created_at:%Y-%m-%d %H:%M} by {a.actor or '-'}")


@app.command("evaluate")
def models_evaluate(
    name: Annotated[str, typer.Argument(help="Model to measure.")],
) -> None:
    """Measure a model on the gate's question sets (models.gate_sets) and record it.

    Example: docchat models evaluate qwen2.5-coder-0.5b-instruct-q4_k_m
    """
    releases.evaluate("model", name)
    with registry() as (_settings, models):
        entry = models.model(name)
    _show(entry)


@app.command("activate")
def models_activate(
    name: Annotated[str, typer.Argument(help="Model to put in service.")],
    force: Force = False,
    evaluate: Evaluate = True,
) -> None:
    """Put a model in service through the promotion gate.

    Put a model in service through the promotion gate: it is measured on the gate's
    question sets and refused if it answers worse than the active model. Running servers
    switch to it within models.poll_interval_s, without a restart.

    Example: docchat models activate qwen2.5-coder-0.5b-instruct-q4_k_m
    """
    entry = releases.activate("model", name, force=force, evaluate=evaluate)
    say(f"active: {entry.name} ({entry.sha256[:12]})")


@app.command("rollback")
def models_rollback() -> None:
    """Return to the model that served before the current one.

    Return to the model that was in service before the current one (no gate: it
    served before). Running servers switch back without a restart."""
    with registry() as (_settings, models):
        entry = refused_as_failure(lambda: models.rollback(actor="cli"))
    say(f"active: {entry.release} ({entry.sha256[:12]})")
