"""The `docchat` command: serve, ingest, ask, config, eval."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.settings import Settings, load_settings

app = typer.Typer(
    help="docchat: answer questions from your documentation, on your own machines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the settings.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure answer and retrieval quality.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(eval_app, name="eval")

console = Console()
err = Console(stderr=True)

EXIT_PARTIAL = 3


def _settings(**overrides: Any) -> Settings:
    settings = load_settings(**overrides)
    logging.basicConfig(
        level=settings.logging.level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("alembic", "chromadb", "sentence_transformers", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return settings


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default: server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: server.port).")] = None,
) -> None:
    """Start the web app and API.

    Example: docchat serve --host 0.0.0.0 --port 8000
    """
    import uvicorn

    from app.main import create_app

    settings = _settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level=settings.logging.level.lower(),
        timeout_graceful_shutdown=30,
    )


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    collection: Annotated[
        str | None, typer.Option(help="Collection to write (default: vectors.collection).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Report what would change; write nothing.")] = False,
) -> None:
    """Ingest Markdown, HTML, reST, text and PDF files; re-runs only process changes.

    Example: docchat ingest docs/ --collection docs

    Exit status: 0 all files ingested, 3 partial (some files failed and were skipped),
    1 the run could not be done.
    """
    from app.components import load_embedder, open_database, open_vectors
    from app.store.vectors import VectorStoreBusy
    from ingest.pipeline import Ingestor

    settings = _settings()
    target = collection or settings.vectors.collection
    try:
        settings.vectors.model_validate({"collection": target})
    except ValueError:
        raise _fail(f"invalid collection name {target!r}: use 3-63 of [a-zA-Z0-9._-]") from None
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise _fail(f"no such file or folder: {', '.join(missing)}")
    try:
        vectors = None if dry_run else open_vectors(settings, writer=True)
    except VectorStoreBusy as exc:
        raise _fail(str(exc)) from None
    db = open_database(settings)
    try:
        ingestor = Ingestor(
            db,
            vectors,
            load_embedder(settings),
            chunk_tokens=settings.ingest.chunk_tokens,
            chunk_overlap=settings.ingest.chunk_overlap,
            max_file_bytes=int(settings.ingest.max_file_mb * 1_000_000),
        )
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files · {task.fields[chunks]} chunks"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        ) as bar:
            task = bar.add_task("ingesting", total=None, chunks=0)
            written = 0

            def on_start(total: int) -> None:
                bar.update(task, total=total)

            def on_file(source: str, outcome: str, chunks: int) -> None:
                nonlocal written
                written += chunks
                if outcome != "deleted":
                    bar.advance(task)
                bar.update(task, chunks=written, description=f"{outcome:>9} {source[-40:]}")

            summary = ingestor.run(
                paths, target, dry_run=dry_run, progress=on_file, on_start=on_start
            )
            bar.update(task, description="done")
    except KeyboardInterrupt:
        raise _fail(
            "interrupted; the store is consistent, run the same command to finish", 130
        ) from None
    finally:
        if vectors is not None:
            vectors.close()
        db.close()

    table = Table(title=f"ingest into {target!r}" + (" (dry run)" if dry_run else ""))
    for name in ("new", "changed", "unchanged", "deleted", "failed", "skipped", "chunks_written"):
        table.add_column(name.replace("_", " "), justify="right")
    table.add_column("seconds", justify="right")
    table.add_row(
        *(
            str(getattr(summary, n))
            for n in (
                "new",
                "changed",
                "unchanged",
                "deleted",
                "failed",
                "skipped",
                "chunks_written",
            )
        ),
        f"{summary.seconds:.1f}",
    )
    console.print(table)
    if summary.stages:
        spent = ", ".join(f"{name} {secs:.1f} s" for name, secs in summary.stages.items())
        console.print(f"time by stage: {spent}", highlight=False)
    for finding in summary.findings:
        colour = "red" if finding.severity == "error" else "yellow"
        console.print(
            f"[{colour}]{finding.severity}[/] {finding.source}: {finding.reason}", highlight=False
        )
    if summary.partial:
        err.print(
            f"partial run: {summary.failed} file(s) failed and were skipped (exit {EXIT_PARTIAL})"
        )
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    collection: Annotated[str | None, typer.Option(help="Collection to search.")] = None,
) -> None:
    """Answer one question from the terminal, with its sources.

    Example: docchat ask "How do I install docchat?"
    """
    from app.components import build_components
    from app.store.vectors import VectorStoreBusy

    overrides = {"vectors": {"collection": collection}} if collection else {}
    settings = _settings(**overrides)
    try:
        components = build_components(settings)
    except VectorStoreBusy as exc:
        raise _fail(str(exc)) from None

    async def run() -> list[dict[str, Any]]:
        answerer = components.answerer
        prepared = await answerer.prepare(question, [])
        async for piece in answerer.stream(prepared):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        return [c.as_dict() for c in prepared.citations]

    try:
        sources = asyncio.run(run())
    finally:
        components.close()
    if sources:
        console.print("\n[bold]Sources[/]")
        for c in sources:
            section = f" — {c['section']}" if c["section"] else ""
            console.print(
                f"  [{c['n']}] {c['source']}{section} (score {c['score']:.2f})", highlight=False
            )


@config_app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the effective settings, secrets masked, and where each value came from."""
    from app.config_report import settings_report

    settings = _settings()
    rows = settings_report(settings)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="docchat settings")
    table.add_column("setting")
    table.add_column("value")
    table.add_column("from")
    for row in rows:
        table.add_row(row["name"], str(row["value"]), row["source"])
    console.print(table)


@eval_app.command("retrieval")
def eval_retrieval(
    qa_file: Annotated[Path, typer.Argument(help="JSONL of {question, sources}.")],
    k: Annotated[int, typer.Option(help="Documents considered per question.")] = 5,
    collection: Annotated[str | None, typer.Option(help="Collection to search.")] = None,
    verbose: Annotated[bool, typer.Option(help="List the questions that missed.")] = False,
) -> None:
    """Print recall@k and MRR of retrieval for questions with known source files.

    Example: docchat eval retrieval eval/python311_qa.jsonl --collection python311
    """
    from app.components import load_embedder, open_vectors
    from app.rag.evaluation import evaluate_retrieval, read_qa_file
    from app.rag.retrieval import Retriever
    from app.store.vectors import VectorStoreBusy

    settings = _settings()
    try:
        cases = read_qa_file(qa_file)
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    try:
        vectors = open_vectors(settings, writer=False)
    except VectorStoreBusy as exc:
        raise _fail(str(exc)) from None
    try:
        target = collection or settings.vectors.collection
        if vectors.count(target) == 0:
            raise _fail(f"collection {target!r} is empty: ingest the documents first")
        retriever = Retriever(load_embedder(settings), vectors, target, top_k=k, min_score=-1.0)
        report = evaluate_retrieval(retriever, cases, k=k)
    finally:
        vectors.close()
    console.print(
        f"questions: {report.questions}  recall@{k}: {report.recall:.3f}  "
        f"MRR@{k}: {report.mrr:.3f}  recall@1: {report.recall_at_1:.3f}",
        highlight=False,
    )
    if verbose:
        for miss in report.misses:
            console.print(f"  miss: {miss['question']} -> got {miss['got']}", highlight=False)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
