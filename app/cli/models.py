"""`docchat models`: the chat models as versioned releases (add, pull, evaluate,
activate through the promotion gate, roll back)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from app.cli.common import console, err, fail, load, say

if TYPE_CHECKING:  # the commands' own imports wait until they run: --help stays fast
    from app.llm.promotion import Promotion
    from app.llm.registry import ModelEntry, ModelRegistry
    from app.settings import Settings

app = typer.Typer(no_args_is_help=True)


@contextmanager
def registry() -> Iterator[tuple[Settings, ModelRegistry]]:
    """The settings and the registry in their database (closed afterwards)."""
    from app.llm.registry import ModelRegistry
    from app.store.db import open_database

    settings = load()
    if settings.llm.backend == "remote":
        raise fail("llm.backend is remote: the model server's models are not in the registry")
    db = open_database(settings)
    try:
        yield settings, ModelRegistry(db)
    finally:
        db.close()


@contextmanager
def bytes_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar over bytes, on stderr; yields the callback that advances it."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _fail_on_registry_errors(run: Callable[[], Any]) -> Any:
    from app.llm.base import CannotChat
    from app.llm.registry import RegistryError

    try:
        return run()
    except (RegistryError, CannotChat) as exc:
        raise fail(str(exc)) from None


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
            entry = _fail_on_registry_errors(lambda: models.add(path, name=name, progress=advance))
    _show(entry)


@app.command("pull")
def models_pull(
    name: Annotated[
        str | None, typer.Argument(help="A catalog name (default: the default model).")
    ] = None,
) -> None:
    """Install a catalog model into the data directory and register it.

    Install a model from the catalog into the data directory and register it; its
    hash is checked before anything uses it.

    Example: docchat models pull qwen2.5-coder-1.5b-instruct-q4_k_m
    """
    from app.llm.catalog import CATALOG, DEFAULT_MODEL, PullError, pull

    name = name or DEFAULT_MODEL
    model = CATALOG.get(name)
    if model is None:
        raise fail(f"no catalog model {name!r}; known: {', '.join(CATALOG)}")
    with registry() as (settings, models):
        with bytes_bar(f"pulling {name}", model.size_bytes) as advance:
            try:
                path = pull(model, settings.data_dir / "models", progress=advance)
            except PullError as exc:
                raise fail(str(exc)) from None
        existing = models.find_by_hash(model.sha256)
        if existing is not None:
            say(f"{name} is registered already, as {existing.name}")
            return
        entry = _fail_on_registry_errors(
            lambda: models.add(path, name=name, source=f"catalog:{name}")
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


@app.command("list")
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Registered models, the active one marked."""
    with registry() as (_settings, models):
        entries = models.entries()
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
        entry = _fail_on_registry_errors(lambda: models.get(name) if name else models.active())
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


def _promotion(settings: Settings, models: ModelRegistry) -> Promotion:
    """The gate, measuring in this process (the embedded store must not be held by a
    running server: activate through its admin API then)."""
    from app.components import build_components, load_model
    from app.llm.promotion import Promotion, measure_with

    base: list[Any] = []

    def components_for(engine: Any, collection: str) -> Any:
        scoped = settings.model_copy(
            update={"vectors": settings.vectors.model_copy(update={"collection": collection})}
        )
        if not base:
            base.append(build_components(settings, writer=False, engine=engine))
        return base[0].using(engine=engine, settings=scoped)

    measure = measure_with(settings, lambda entry: load_model(settings, entry), components_for)
    return Promotion(settings, models, measure)


@contextmanager
def question_bar() -> Iterator[Callable[[Any], None]]:
    """A progress bar over the questions asked, on stderr."""
    with Progress(
        TextColumn("{task.description}"), TextColumn("{task.completed} answers"), console=err
    ) as bar:
        task = bar.add_task("asking the gate's questions")
        yield lambda result: bar.advance(task)


@app.command("evaluate")
def models_evaluate(
    name: Annotated[str, typer.Argument(help="Model to measure.")],
) -> None:
    """Measure a model on the gate's question sets (models.gate_sets) and record it.

    Example: docchat models evaluate qwen2.5-coder-0.5b-instruct-q4_k_m
    """
    from app.store.vectors import VectorStoreBusy

    with registry() as (settings, models), question_bar() as advance:
        try:
            promotion = _promotion(settings, models)
            _fail_on_registry_errors(lambda: promotion.evaluate(name, advance))
        except VectorStoreBusy as exc:
            raise fail(f"{exc} (or evaluate through the server's admin API)") from None
        entry = models.get(name)
    _show(entry)


@app.command("activate")
def models_activate(
    name: Annotated[str, typer.Argument(help="Model to put in service.")],
    force: Annotated[
        bool, typer.Option(help="Activate even if the gate refuses (recorded).")
    ] = False,
    evaluate: Annotated[
        bool, typer.Option(help="Measure now (off: use the recorded evaluations).")
    ] = True,
) -> None:
    """Put a model in service through the promotion gate.

    Put a model in service through the promotion gate: it is measured on the gate's
    question sets and refused if it answers worse than the active model. Running servers
    switch to it within models.poll_interval_s, without a restart.

    Example: docchat models activate qwen2.5-coder-0.5b-instruct-q4_k_m
    """
    from app.store.vectors import VectorStoreBusy

    with registry() as (settings, models), question_bar() as advance:
        try:
            promotion = _promotion(settings, models)
            entry = _fail_on_registry_errors(
                lambda: promotion.activate(
                    name, actor="cli", force=force, evaluate=evaluate, progress=advance
                )
            )
        except VectorStoreBusy as exc:
            raise fail(
                f"{exc} While a server runs on the embedded store, activate through its "
                f"admin API: POST /api/admin/models/{name}/activate"
            ) from None
    say(f"active: {entry.name} ({entry.sha256[:12]})")


@app.command("rollback")
def models_rollback() -> None:
    """Return to the model that served before the current one.

    Return to the model that was in service before the current one (no gate: it
    served before). Running servers switch back without a restart."""
    with registry() as (_settings, models):
        entry = _fail_on_registry_errors(lambda: models.rollback(actor="cli"))
    say(f"active: {entry.name} ({entry.sha256[:12]})")
