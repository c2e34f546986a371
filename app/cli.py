"""The `docchat` command: serve, ingest, ask, config, eval."""

from __future__ import annotations

import asyncio
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from app.settings import Settings, load_settings

app = typer.Typer(
    help="docchat: answer questions from your documentation, on your own machines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the settings.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys (shown once, stored hashed).", no_args_is_help=True)
eval_app = typer.Typer(help="Measure answer and retrieval quality.", no_args_is_help=True)
quality_app = typer.Typer(help="Data-quality findings of ingest runs.", no_args_is_help=True)
feedback_app = typer.Typer(help="Users' ratings of answers.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(keys_app, name="keys")
app.add_typer(eval_app, name="eval")
app.add_typer(quality_app, name="quality")
app.add_typer(feedback_app, name="feedback")

console = Console()
err = Console(stderr=True)

EXIT_PARTIAL = 3


def _settings(**overrides: Any) -> Settings:
    """Settings, with logging that masks every secret (tracebacks included)."""
    from app.security.redaction import Redactor
    from app.security.secrets import ConfigError, known_secrets
    from app.telemetry import logging as logs

    try:
        settings = load_settings(**overrides)
        secrets = known_secrets(settings)
    except (ValueError, ConfigError) as exc:
        raise _fail(_describe(exc)) from None
    logs.install(Redactor(secrets), settings.logging.level, settings.log_format)
    return settings


def _describe(exc: Exception) -> str:
    """An error as lines for a person; pydantic's errors without their inputs or links."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    lines = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  - {message}" if message.startswith(where) else f"  - {where}: {message}")
    return "invalid settings:\n" + "\n".join(lines)


def _fail(message: str, code: int = 1) -> typer.Exit:
    # Escaped: a message may quote text with [brackets] that rich would read as markup.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
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

    from app.components import build_components
    from app.llm.base import EngineUnavailable
    from app.llm.provision import ModelNotFound
    from app.main import create_app
    from app.security.head_limits import head_limited_protocol
    from app.security.secrets import ConfigError, check_startup
    from app.store.db import DatabaseUnavailable
    from app.store.vectors import VectorStoreBusy, VectorStoreUnavailable

    settings = _settings()
    try:
        check_startup(settings)  # every problem at once, before seconds of model loading
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    # Opened here rather than in the app's lifespan, so that an unreachable store or a
    # missing model is one clear line and exit 1, not a traceback from uvicorn.
    try:
        components = build_components(settings)
    except (
        DatabaseUnavailable,
        VectorStoreBusy,
        VectorStoreUnavailable,
        ModelNotFound,
        EngineUnavailable,
    ) as exc:
        raise _fail(f"cannot start: {exc}") from None
    # The app closes them at shutdown: uvicorn may end the process by re-raising SIGTERM.
    uvicorn.run(
        create_app(settings, components, owns_components=True),
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level=settings.logging.level.lower(),
        log_config=None,  # keep the redacting handler installed above
        access_log=False,  # docchat logs each request with its context
        timeout_graceful_shutdown=30,
        # httptools with a cap on request heads (uvicorn's own has none).
        http=head_limited_protocol(
            settings.server.max_header_bytes, settings.server.max_header_count
        ),
    )


@app.command()
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
) -> None:
    """Ingest Markdown, HTML, reST, text and PDF files; re-runs only process changes.

    Example: docchat ingest docs/ --collection docs

    Exit status: 0 all files ingested, 3 partial (some files failed and were skipped),
    1 the run could not be done.
    """
    from app.components import open_ingestor
    from app.store.db import DatabaseUnavailable
    from app.store.models import OUTCOMES
    from app.store.vectors import VectorStoreBusy, VectorStoreUnavailable

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
        with (
            open_ingestor(settings, dry_run=dry_run, extra_exclude=exclude or []) as ingestor,
            Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("files · {task.fields[chunks]} chunks"),
                TimeElapsedColumn(),
                console=err,
                transient=False,
            ) as bar,
        ):
            task = bar.add_task("ingesting", total=None, chunks=0)
            written = 0

            def on_start(total: int) -> None:
                bar.update(task, total=total)

            def on_file(source: str, outcome: str, chunks: int) -> None:
                nonlocal written
                written += chunks
                if outcome != "deleted":
                    bar.advance(task)
                bar.update(task, chunks=written, description=f"{outcome:>9} {escape(source[-40:])}")

            summary = ingestor.run(
                paths, target, dry_run=dry_run, progress=on_file, on_start=on_start
            )
            bar.update(task, description="done")
    except (VectorStoreBusy, VectorStoreUnavailable, DatabaseUnavailable) as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        raise _fail(
            "interrupted; the store is consistent, run the same command to finish", 130
        ) from None

    table = Table(title=f"ingest into {target!r}" + (" (dry run)" if dry_run else ""))
    counts = (*OUTCOMES, "chunks_written")
    for name in counts:
        table.add_column(name.replace("_", " "), justify="right")
    table.add_column("seconds", justify="right")
    table.add_row(*(str(getattr(summary, n)) for n in counts), f"{summary.seconds:.1f}")
    console.print(table)
    if summary.stages:
        spent = ", ".join(f"{name} {secs:.1f} s" for name, secs in summary.stages.items())
        console.print(f"time by stage: {spent}", highlight=False)
    for finding in summary.findings:
        colour = "red" if finding.severity == "error" else "yellow"
        console.print(
            f"[{colour}]{finding.severity}[/] {finding.source}: {finding.reason}", highlight=False
        )
    errors = sum(1 for f in summary.findings if f.severity == "error")
    console.print(
        f"findings: {errors} errors, {len(summary.findings) - errors} warnings", highlight=False
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
    from app.security.secrets import ConfigError
    from app.store.vectors import VectorStoreBusy

    overrides = {"vectors": {"collection": collection}} if collection else {}
    settings = _settings(**overrides)
    try:
        components = build_components(settings, writer=False)
    except (VectorStoreBusy, ConfigError) as exc:
        raise _fail(str(exc)) from None

    from app.chat.events import Failed, Finished, Token
    from app.chat.service import Question
    from app.problems import ApiError, problem_from

    async def run() -> list[dict[str, Any]]:
        answer = await components.chat.open(Question(question, store=False))
        async for event in answer.events():
            if isinstance(event, Token):
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, Finished) and event.notice:
                sys.stdout.write("\n\n" + event.notice)
            elif isinstance(event, Failed):
                raise ApiError.of(event.problem)
        sys.stdout.write("\n")
        return [c.as_dict() for c in answer.started.citations]

    try:
        sources = asyncio.run(run())
    except Exception as exc:
        problem = problem_from(exc)
        if problem is None:
            raise
        raise _fail(problem.message) from None
    finally:
        components.close()
    if sources:
        console.print("\n[bold]Sources[/]")
        for c in sources:
            section = f" — {c['section']}" if c["section"] else ""
            console.print(
                f"  [{c['n']}] {c['source']}{section} (score {c['score']:.2f})", highlight=False
            )


def _key_store(settings: Settings) -> Any:
    from app.components import open_database
    from app.security.keys import KeyStore
    from app.security.secrets import ConfigError, resolve_pepper

    try:
        pepper, previous = resolve_pepper(settings)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    return KeyStore(open_database(settings), pepper, previous)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A unique name, e.g. the team or tool using it.")],
    scope: Annotated[str, typer.Option(help="chat, ingest (includes chat) or admin (all).")],
    expires: Annotated[
        float | None, typer.Option(help="Days until the key stops working.", min=0.001)
    ] = None,
) -> None:
    """Create an API key and print it once; only its keyed hash is stored.

    Example: docchat keys create --name support-bot --scope chat --expires 90
    """
    settings = _settings()
    try:
        key = _key_store(settings).create(name, scope, expires)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    err.print(f"key {name!r} ({scope}) created. It is shown once; store it now:")
    sys.stdout.write(key + "\n")


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys: name, scope, created, last used, expiry, state (never the key)."""
    keys = _key_store(_settings()).list()

    def when(moment: Any) -> str:
        return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"

    rows = [
        {
            "id": k.id,
            "name": k.name,
            "scope": k.scope,
            "created": when(k.created_at),
            "last_used": when(k.last_used_at),
            "expires": when(k.expires_at),
            "state": k.state,
        }
        for k in keys
    ]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="API keys")
    for column in ("id", "name", "scope", "created", "last_used", "expires", "state"):
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*(row[c] for c in row))
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(name_or_id: Annotated[str, typer.Argument(help="Key name or id.")]) -> None:
    """Revoke a key; it is refused from the next request on."""
    if not _key_store(_settings()).revoke(name_or_id):
        raise _fail(f"no active key named or with id {name_or_id!r}")
    console.print(f"revoked {name_or_id}")


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


@quality_app.command("report")
def quality_report(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    collection: Annotated[
        str | None, typer.Option(help="Collection (default: vectors.collection).")
    ] = None,
    run: Annotated[
        int | None, typer.Option(help="Run id (default: the collection's last run).")
    ] = None,
) -> None:
    """Show the data-quality findings of the last ingest run, grouped by check.

    Example: docchat quality report --collection docs --json
    """
    from app.components import open_database
    from ingest.quality_report import build_report, find_run, format_report

    settings = _settings()
    # A run id needs no collection; one named with it must match.
    target = collection if run is not None else collection or settings.vectors.collection
    db = open_database(settings)
    try:
        run_id = find_run(db, target, run)
        report = build_report(db, run_id) if run_id is not None else None
    finally:
        db.close()
    if report is None and run is not None:
        raise _fail(f"no ingest run {run}" + (f" of collection {target!r}" if target else ""))
    if report is None:
        raise _fail(f"no ingest run of collection {target!r} yet: run `docchat ingest` first")
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    typer.echo("\n".join(format_report(report)))


class RatingChoice(StrEnum):
    """What `feedback list --rating` takes."""

    up = "up"
    down = "down"


@feedback_app.command("list")
def feedback_list(
    rating: Annotated[RatingChoice | None, typer.Option(help="Only up or only down.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recent ratings of answers, with the question, the answer and its sources.

    Example: docchat feedback list --rating down --limit 50
    """
    from app.components import open_database
    from app.store import feedback

    settings = _settings()
    db = open_database(settings)
    try:
        with db.session() as session:
            items = feedback.recent(session, rating.value if rating else None, limit)
    finally:
        db.close()
    if as_json:
        sys.stdout.write(json.dumps(items, indent=2, ensure_ascii=False) + "\n")
        return
    if not items:
        console.print("no feedback yet" + (f" rated {rating.value}" if rating else ""))
        return
    table = Table(title="Feedback, newest first")
    for column in ("when", "rating", "by", "question", "comment", "top source"):
        table.add_column(column)
    for item in items:
        top = item["citations"][0]["source"] if item["citations"] else "-"
        # Text, not markup: users wrote the question and comment ("[/]" must not break it).
        table.add_row(
            item["created_at"][:16].replace("T", " "),
            item["rating"],
            *(
                Text(value)
                for value in (
                    item["given_by"] or "-",
                    item["question"] or "-",
                    item["comment"] or "",
                    top,
                )
            ),
        )
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
