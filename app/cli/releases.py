"""What `docchat models` and `docchat finetune` share: the registry in the configured
database, the gate measuring in this process, progress bars, and the commands that
evaluate and activate a release of either kind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from app.cli.common import err, fail, load

if TYPE_CHECKING:  # the commands' own imports wait until they run: --help stays fast
    from app.releases.entries import Kind, ModelEntry
    from app.releases.gate import Gate
    from app.releases.registry import Registry
    from app.settings import Settings

T = TypeVar("T")
# The options of every activation, a model's or an adapter's.
Force = Annotated[bool, typer.Option(help="Put it in service even if the gate refuses (recorded).")]
Evaluate = Annotated[bool, typer.Option(help="Measure now (off: use the recorded evaluations).")]


@contextmanager
def registry() -> Iterator[tuple[Settings, Registry]]:
    """The settings and the registry in their database (closed afterwards)."""
    from app.releases.registry import Registry
    from app.store.db import open_database

    settings = load()
    if settings.llm.backend == "remote":
        raise fail("llm.backend is remote: the model server's models are not in the registry")
    db = open_database(settings)
    try:
        yield settings, Registry(db)
    finally:
        db.close()


def refused_as_failure(run: Callable[[], T]) -> T:
    """`run()`, its registry refusal (or a file that cannot chat) as the command's
    one-line failure."""
    from app.llm.base import CannotChat
    from app.releases.errors import RegistryError

    try:
        return run()
    except (RegistryError, CannotChat) as exc:
        raise fail(str(exc)) from None


def gate(settings: Settings, registry: Registry) -> Gate:
    """The gate, measuring in this process (the embedded store must not be held by a
    running server: activate through its admin API then)."""
    from app.components import build_gate

    return build_gate(settings, registry.db)


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


@contextmanager
def question_bar() -> Iterator[Callable[[Any], None]]:
    """A progress bar over the questions asked, on stderr."""
    with Progress(
        TextColumn("{task.description}"), TextColumn("{task.completed} answers"), console=err
    ) as bar:
        task = bar.add_task("asking the gate's questions")
        yield lambda result: bar.advance(task)


def evaluate(kind: Kind, name: str) -> None:
    """Measure a release on the gate's sets in this process and record the report."""
    from app.store.vectors import VectorStoreBusy

    with registry() as (settings, releases), question_bar() as advance:
        try:
            refused_as_failure(lambda: gate(settings, releases).evaluate(kind, name, advance))
        except VectorStoreBusy as exc:
            raise fail(f"{exc} (or evaluate through the server's admin API)") from None


def activate(kind: Kind, name: str, *, force: bool, evaluate: bool) -> ModelEntry:
    """Put a release in service through the gate; the release now in service."""
    from app.store.vectors import VectorStoreBusy

    with registry() as (settings, releases), question_bar() as advance:
        try:
            return refused_as_failure(
                lambda: gate(settings, releases).activate(
                    kind, name, actor="cli", force=force, evaluate=evaluate, progress=advance
                )
            )
        except VectorStoreBusy as exc:
            raise fail(
                f"{exc} While a server runs on the embedded store, activate through its "
                f"admin API: POST /api/admin/{kind}s/{name}/activate"
            ) from None
