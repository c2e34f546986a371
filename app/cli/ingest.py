"""`docchat ingest`: bring a collection in line with a folder of documents."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from app.cli.common import EXIT_PARTIAL, console, err, fail, load, say

if TYPE_CHECKING:  # the command's own imports wait until it runs: --help stays fast
    from ingest.summary import IngestSummary


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    collection: Annotated[
        str | None, typer.Option(help="Collection to write (default: vectors.collection).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Report what would change; write nothing.")] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="Glob of paths to leave out (repeatable), besides ingest.exclude."),
    ] = None,
    allow_mass_change: Annotated[
        bool,
        typer.Option(
            "--allow-mass-change",
            help="Let the run delete or replace more of the collection than "
            "ingest.mass_change_share (0.5) allows; without it such a run stops first.",
        ),
    ] = False,
) -> None:
    """Ingest Markdown, HTML, reST, text, PDF, office and EPUB files; re-runs process changes.

    Example: docchat ingest docs/ --collection docs

    Exit status: 0 all files ingested, 3 partial (some files failed and were skipped),
    1 the run could not be done (or would have deleted or replaced too much of the
    collection: see --allow-mass-change).
    """
    from app.access.collections import Collections
    from app.cli.calibrate import calibrate_after_ingest
    from app.components import open_ingestor
    from app.llm.embedder import Embedder
    from app.store.db import DatabaseUnavailable
    from app.store.index_record import EmbeddingMismatch
    from app.store.vectors import VectorStoreBusy, VectorStoreUnavailable
    from ingest.mass_change import MassChange

    settings = load()
    target = collection or settings.vectors.collection
    try:
        settings.vectors.model_validate({"collection": target})
    except ValueError:
        raise fail(f"invalid collection name {target!r}: use 3-63 of [a-zA-Z0-9._-]") from None
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise fail(f"no such file or folder: {', '.join(missing)}")
    try:
        with (
            open_ingestor(settings, dry_run=dry_run, extra_exclude=exclude or []) as ingestor,
            ProgressBar() as bar,
        ):
            summary = ingestor.run(
                paths,
                target,
                dry_run=dry_run,
                progress=bar.file_done,
                on_start=bar.start,
                allow_mass_change=allow_mass_change,
            )
            registered = False
            if not dry_run:
                # A new collection is registered for admins only until readers are
                # granted; the default one, as it always was, for everyone.
                registered = Collections(ingestor.db).ensure(
                    target, everyone=target == settings.vectors.collection, actor="cli"
                )
            scope = None
            # The scope threshold follows the collection (app/rag/scope.py).
            if ingestor.vectors is not None and isinstance(ingestor.embedder, Embedder):
                scope = calibrate_after_ingest(
                    settings, ingestor.vectors, ingestor.db, target, ingestor.embedder
                )
    except (
        VectorStoreBusy,
        VectorStoreUnavailable,
        DatabaseUnavailable,
        EmbeddingMismatch,
        MassChange,
    ) as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail(
            "interrupted; the store is consistent, run the same command to finish", 130
        ) from None
    print_summary(summary, target)
    if registered and target != settings.vectors.collection:
        say(
            f"collection {target} registered: admins only read it until you grant readers "
            f"(docchat collections grant {target} group NAME)"
        )
    if scope is not None:
        say(f"scope: {scope}")
    if summary.partial:
        err.print(
            f"partial run: {summary.failed} file(s) failed and were skipped (exit {EXIT_PARTIAL})",
            highlight=False,
        )
        raise typer.Exit(EXIT_PARTIAL)


class ProgressBar:
    """Files done of files found, chunks written, and the file at hand, on stderr."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files · {task.fields[chunks]} chunks"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        )
        self.task = self.bar.add_task("ingesting", total=None, chunks=0)
        self.written = 0

    def __enter__(self) -> ProgressBar:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.update(self.task, description="done")
        self.bar.__exit__(None, None, None)

    def start(self, total: int) -> None:
        """The run found `total` files."""
        self.bar.update(self.task, total=total)

    def file_done(self, source: str, outcome: str, chunks: int) -> None:
        """One file handled (or, for a deleted file, removed)."""
        self.written += chunks
        if outcome != "deleted":
            self.bar.advance(self.task)
        # Escaped: a file name may hold [brackets].
        shown = f"{outcome:>9} {escape(source[-40:])}"
        self.bar.update(self.task, chunks=self.written, description=shown)


def print_summary(summary: IngestSummary, collection: str) -> None:
    """The counts (one per line: readable in 80 columns or a log), time by stage and
    every finding."""
    from app.store.models import OUTCOMES

    title = f"ingest into {collection}" + (" (dry run)" if summary.dry_run else "")
    table = Table(title=Text(title), show_header=False, box=box.SIMPLE)
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for name in (*OUTCOMES, "chunks_written"):
        table.add_row(name.replace("_", " "), str(getattr(summary, name)))
    table.add_row("seconds", f"{summary.seconds:.1f}")
    console.print(table)
    say(f"embedding model: {summary.model}")
    if summary.stages:
        spent = ", ".join(f"{name} {secs:.1f} s" for name, secs in summary.stages.items())
        say(f"time by stage: {spent}")
    from ingest.quality_report import grouped

    as_rows = [
        {"severity": f.severity, "source": f.source, "reason": f.reason} for f in summary.findings
    ]
    for severity, text in grouped(as_rows):
        line = Text(severity, style="red" if severity == "error" else "yellow")
        line.append(f" {text}")
        console.print(line, highlight=False, soft_wrap=True)
    errors = sum(1 for f in summary.findings if f.severity == "error")
    say(f"findings: {errors} errors, {len(summary.findings) - errors} warnings")
