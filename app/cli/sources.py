"""`docchat sources`: where collections come from (folders, git repositories, websites),
synced on demand or on a schedule (docs/sources.md)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from app.cli.common import console, err, fail, load, say

if TYPE_CHECKING:  # the command's own imports wait until it runs: --help stays fast
    from ingest.sources.registry import SourceView
    from ingest.sources.sync import SyncResult

app = typer.Typer(no_args_is_help=True)


def _registry() -> Any:
    from app.store.db import open_database
    from ingest.sources.registry import Sources

    settings = load()
    return Sources(open_database(settings), settings.data_dir)


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _schedule(source: SourceView) -> str:
    return f"cron {source.cron}" if source.cron else _every(source.interval_s)


def _every(seconds: int) -> str:
    if not seconds:
        return "on demand"
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"every {seconds // size}{unit}"
    return f"every {seconds}s"


def _settings_of(values: list[str]) -> dict[str, Any]:
    """`key=value` pairs; a value is JSON when it parses (numbers, lists), else text."""
    config: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise fail(f"--set takes key=value, not {item!r}")
        try:
            config[key] = json.loads(value)
        except ValueError:
            config[key] = value
    return config


def _interval(every: str | None) -> int:
    from app.cli.durations import parse_span

    if every is None:
        return 0
    try:
        return int(parse_span(every).total_seconds())
    except ValueError as exc:
        raise fail(str(exc)) from None


@app.command("add")
def sources_add(
    name: Annotated[str, typer.Argument(help="A name for the source.")],
    kind: Annotated[str, typer.Argument(help="folder, git or website.")],
    target: Annotated[str, typer.Argument(help="The folder, repository URL or start URL.")],
    collection: Annotated[str, typer.Option(help="The collection it fills.")],
    every: Annotated[
        str | None, typer.Option(help="Sync this often (30m, 6h, 1d); default: on demand.")
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option(
            help="Sync at the times of a cron expression instead, e.g. '0 3 * * 1-5' "
            "(UTC; 'TZ=Europe/Paris 0 3 * * 1-5' for another zone)."
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="A setting of the kind, key=value (repeatable): branch=main, subpath=docs, "
            "exclude='[\"drafts/*\"]', credential=NAME, web_url=..., max_pages=200.",
        ),
    ] = None,
) -> None:
    """Register a source of a collection; `sources sync NAME` (or the schedule) fills it.

    Example: docchat sources add handbook git https://git.example.org/docs.git
    --collection handbook --every 1h --set subpath=docs --set credential=gitea
    (or --cron '0 3 * * 1-5': at 03:00 UTC on weekdays)
    """
    from ingest.sources import KINDS
    from ingest.sources.registry import SourceProblem

    if kind not in KINDS:
        raise fail(f"unknown kind {kind!r}: one of {', '.join(sorted(KINDS))}")
    config = {KINDS[kind].target: target, **_settings_of(set_ or [])}
    try:
        source = _registry().add(
            name, collection, kind, config, interval_s=_interval(every), cron=cron
        )
    except SourceProblem as exc:
        raise fail(str(exc)) from None
    schedule = _schedule(source)
    if source.next_run_at:
        schedule += f", next run {_when(source.next_run_at)} UTC"
    say(f"added {source.kind} source {source.name} of {source.collection} ({schedule})")


@app.command("list")
def sources_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every source: collection, kind, schedule, last and next run, last outcome.

    Example: docchat sources list
    """
    found = _registry().list()
    if as_json:
        console.print_json(json.dumps([s.as_dict() for s in found]))
        return
    table = Table(title="Sources (times in UTC)")
    for column in ("name", "collection", "kind", "schedule", "last run", "status", "next run"):
        table.add_column(column)
    for s in found:
        table.add_row(
            *map(
                Text,
                (
                    s.name,
                    s.collection,
                    s.kind,
                    _schedule(s),
                    _when(s.last_finished_at),
                    s.last_status or "never run",
                    _when(s.next_run_at),
                ),
            )
        )
    console.print(table)


@app.command("show")
def sources_show(
    name: Annotated[str, typer.Argument(help="The source's name or id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A source's settings and its last sync: counts, findings, duration, error.

    Example: docchat sources show handbook
    """
    from ingest.sources.registry import SourceProblem

    try:
        source = _registry().get(name)
    except SourceProblem as exc:
        raise fail(str(exc)) from None
    if as_json:
        console.print_json(json.dumps(source.as_dict()))
        return
    print_source(source)


def print_source(s: SourceView) -> None:
    """A source, one fact a line."""
    say(f"{s.name} ({s.id}): {s.kind} source of collection {s.collection}")
    for key, value in s.config.items():
        say(f"  {key}: {value}")
    say(f"schedule: {_schedule(s)}{'' if s.enabled else ' (disabled)'}")
    say(f"last run: {_when(s.last_started_at)} -> {s.last_status or 'never run'}")
    if s.last_counts:
        say("  " + ", ".join(f"{k} {v}" for k, v in s.last_counts.items()))
    if s.last_seconds is not None:
        say(f"  {s.last_seconds:.1f} s, {s.last_findings} findings (ingest run {s.last_run_id})")
    if s.last_error:
        err.print(Text(f"  error: {s.last_error}", style="red"))
    say(f"last success: {_when(s.last_success_at)}; next run: {_when(s.next_run_at)} (UTC)")


@app.command("schedule")
def sources_schedule(
    name: Annotated[str, typer.Argument(help="The source's name or id.")],
    every: Annotated[
        str | None, typer.Option(help="Sync this often (30m, 6h, 1d); omit: on demand only.")
    ] = None,
    cron: Annotated[
        str | None, typer.Option(help="Sync at the times of a cron expression instead.")
    ] = None,
    disable: Annotated[bool, typer.Option(help="Keep the schedule but run nothing.")] = False,
) -> None:
    """Change how often a source syncs.

    Example: docchat sources schedule handbook --every 6h;
    docchat sources schedule handbook --cron '30 2 * * *'
    """
    from ingest.sources.registry import SourceProblem

    try:
        source = _registry().set_schedule(name, _interval(every), enabled=not disable, cron=cron)
    except SourceProblem as exc:
        raise fail(str(exc)) from None
    say(f"{source.name}: {_schedule(source)}, next run {_when(source.next_run_at)} UTC")


@app.command("remove")
def sources_remove(
    name: Annotated[str, typer.Argument(help="The source's name or id.")],
    keep_documents: Annotated[
        bool, typer.Option(help="Leave the documents it brought in the collection.")
    ] = False,
) -> None:
    """Remove a source, its clone or mirror, and (unless kept) its documents.

    Example: docchat sources remove handbook
    """
    from ingest.sources.registry import SourceProblem

    _exists(name)  # before the stores and the model are opened (seconds)
    with _syncer() as syncer:
        try:
            source, removed = syncer.remove(name, keep_documents=keep_documents)
        except SourceProblem as exc:
            raise fail(str(exc)) from None
    say(f"removed source {source.name} and {removed} of its documents from {source.collection}")


@app.command("sync")
def sources_sync(
    name: Annotated[str | None, typer.Argument(help="The source (default: see --due).")] = None,
    due: Annotated[bool, typer.Option(help="Every source whose scheduled run has come.")] = False,
    allow_mass_change: Annotated[
        bool,
        typer.Option(
            "--allow-mass-change",
            help="Let the sync delete or replace more of the collection than "
            "ingest.mass_change_share allows.",
        ),
    ] = False,
) -> None:
    """Sync one source now, or every due one (what the Kubernetes CronJob runs).

    Example: docchat sources sync handbook; docchat sources sync --due

    Exit status: 0 done (or nothing due), 3 some files failed, 1 a sync failed or was
    refused.
    """
    from ingest.sources.registry import SourceProblem

    if (name is None) == (not due):
        raise fail("name a source, or give --due (not both)")
    if name is not None:
        _exists(name)
    with _syncer() as syncer:
        try:
            results = (
                syncer.sync_due()
                if due
                else [syncer.sync(name or "", allow_mass_change=allow_mass_change)]
            )
        except SourceProblem as exc:
            raise fail(str(exc)) from None
        calibrated = _calibrate(syncer, results)
    for result in results:
        print_result(result)
    for collection, scope in calibrated.items():
        say(f"scope of {collection}: {scope}")
    if due and not results:
        say("no source is due")
    if any(r.status in ("failed", "refused") for r in results):
        raise typer.Exit(1)
    if any(r.status == "partial" for r in results):
        raise typer.Exit(3)


def print_result(result: SyncResult) -> None:
    """One line per sync, and the ingest's findings."""
    line = Text(f"{result.source}: {result.status}")
    if result.note:
        line.append(f" ({result.note})")
    summary = result.summary
    if summary is not None:
        line.append(
            f"; added {summary.new}, changed {summary.changed}, removed {summary.deleted}, "
            f"unchanged {summary.unchanged}, failed {summary.failed}, "
            f"{len(summary.findings)} findings, {summary.seconds:.1f} s"
        )
    console.print(line, highlight=False, soft_wrap=True)
    if summary is not None:
        from ingest.quality_report import grouped

        rows = [
            {"severity": f.severity, "source": f.source, "reason": f.reason}
            for f in summary.findings
        ]
        for severity, text in grouped(rows):
            shown = Text(f"  {severity}", style="red" if severity == "error" else "yellow")
            shown.append(f" {text}")
            console.print(shown, highlight=False, soft_wrap=True)
    if result.error:
        err.print(Text(f"  {result.error}", style="red"), soft_wrap=True)


def _exists(name: str) -> None:
    """Exit with the registry's message when there is no such source."""
    from ingest.sources.registry import SourceProblem

    try:
        _registry().get(name)
    except SourceProblem as exc:
        raise fail(str(exc)) from None


def _calibrate(syncer: Any, results: list[SyncResult]) -> dict[str, str]:
    """The scope threshold follows each collection a sync changed, as after `ingest`."""
    from app.cli.calibrate import calibrate_after_ingest
    from app.llm.embedder import Embedder

    ingestor = syncer.ingestor
    if ingestor.vectors is None or not isinstance(ingestor.embedder, Embedder):
        return {}
    changed = {
        r.summary.collection
        for r in results
        if r.summary is not None and r.summary.new + r.summary.changed + r.summary.deleted
    }
    found = {}
    for collection in sorted(changed):
        scope = calibrate_after_ingest(
            syncer.settings, ingestor.vectors, ingestor.db, collection, ingestor.embedder
        )
        if scope is not None:
            found[collection] = scope
    return found


def _syncer() -> Any:
    from contextlib import contextmanager

    from app.components import open_ingestor
    from app.store.db import DatabaseUnavailable
    from app.store.vectors import VectorStoreBusy, VectorStoreUnavailable
    from ingest.sources.sync import Syncer

    @contextmanager
    def opened() -> Any:
        settings = load()
        try:
            with open_ingestor(settings) as ingestor:
                yield Syncer(settings, ingestor)
        except (VectorStoreBusy, VectorStoreUnavailable, DatabaseUnavailable) as exc:
            raise fail(str(exc)) from None

    return opened()
