"""`docchat backup`: snapshots of everything docchat owns; verify, restore, list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from app.cli.common import console, err, fail, load, say

app = typer.Typer(no_args_is_help=True)

BACKUP_DIR_ENV = "DOCCHAT_BACKUP_DIR"


class Bar:
    """The steps of a backup or restore as one rich progress bar per step, on stderr."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def stage(self, description: str, total: int | None) -> None:
        """Close the previous step and start the next."""
        if self.task is not None:
            task = self.progress.tasks[self.task]
            self.progress.update(self.task, completed=task.total or task.completed)
        self.task = self.progress.add_task(description, total=total)

    def advance(self, n: int) -> None:
        """Count `n` more units of the current step."""
        if self.task is not None:
            self.progress.advance(self.task, n)


@contextmanager
def bar() -> Iterator[Bar]:
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        steps = Bar(progress)
        yield steps
        steps.stage("done", 1)
        steps.advance(1)


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


KeyFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--signing-key-file",
        help="A file holding a key that also verifies snapshots (a lost deployment's "
        "backup.signing_key, an older key). May be given more than once.",
    ),
]
TrustUnsigned = Annotated[
    bool,
    typer.Option(
        "--trust-unsigned",
        help="Accept a snapshot whose signature cannot be checked here (unsigned, or by a "
        "key not held): only if you know where it has been. Recorded in the audit trail. "
        "A signature that a held key shows is wrong is refused all the same.",
    ),
]


def _keys(files: list[Path] | None) -> list[bytes]:
    from app.backup import signing
    from app.backup.stores import BackupError

    try:
        return [signing.read_key_file(path) for path in files or []]
    except BackupError as exc:
        raise fail(str(exc)) from None


def _unverified(reason: str) -> None:
    err.print(
        f"[bold red]UNVERIFIED SNAPSHOT (--trust-unsigned):[/] {reason}",
        markup=True,
        highlight=False,
    )


@app.command("create")
def backup_create(
    to: Annotated[
        Path,
        typer.Option(
            help="Folder that receives the snapshot (a new subfolder per snapshot).",
            envvar=BACKUP_DIR_ENV,
        ),
    ] = Path("backups"),
    keep: Annotated[
        int | None,
        typer.Option(help="Then delete the oldest snapshots in that folder beyond N.", min=1),
    ] = None,
    without_models: Annotated[
        bool,
        typer.Option(
            "--without-models",
            help="Leave your own model files out (listed by name and hash only); catalog "
            "models are never copied: `docchat models pull` installs them again.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Take one consistent snapshot of all docchat's data.

    Take one consistent snapshot of the database, every vector collection, the model
    and adapter registry with their files, datasets and the data directory's files.
    Safe while the server runs.

    Example: docchat backup create --to /backups --keep 7
    """
    from app.backup import snapshot

    settings = load()
    try:
        with bar() as progress:
            path = snapshot.create(settings, to, with_models=not without_models, progress=progress)
        manifest = snapshot.read_manifest(path)
        pruned = snapshot.prune(path.parent, keep) if keep else []
    except (snapshot.BackupError, OSError) as exc:
        raise fail(f"backup failed: {exc}") from None
    except Exception as exc:  # a store's own error (busy, unreachable): one line
        raise fail(f"backup failed: {exc}") from None
    if as_json:
        summary = {**manifest.summary(), "path": str(path), "pruned": [p.name for p in pruned]}
        console.print_json(json.dumps(summary))
        return
    facts = manifest.summary()
    say(f"snapshot {path}")
    say(
        f"  schema {facts['schema_revision']}, {facts['collections']} collections "
        f"({facts['records']} records), {facts['models']} models, {facts['adapters']} "
        f"adapters, {facts['files']} files, {_size(facts['size_bytes'])}"
    )
    for line in manifest.left_out:
        say(f"  left out: {line}")
    for line in manifest.warnings:
        err.print(f"[yellow]warning:[/] {line}", markup=True, highlight=False)
    for old in pruned:
        say(f"  deleted the older snapshot {old.name} (--keep {keep})")


@app.command("verify")
def backup_verify(
    snapshot_dir: Annotated[Path, typer.Argument(metavar="SNAPSHOT", help="A snapshot folder.")],
    signing_key_file: KeyFiles = None,
    trust_unsigned: TrustUnsigned = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Check a snapshot: signature, paths, schema, and every file's hash.

    Check a snapshot: its manifest, its signature (by a key this deployment holds),
    that this docchat knows its schema, that every path it names stays inside the
    snapshot and the data directory, and every file's size and sha256. Exit 1 naming
    the first problem.

    Example: docchat backup verify backups/docchat-backup-20260101T020000Z
    """
    from app.backup import snapshot

    settings = load()
    extra = _keys(signing_key_file)
    try:
        with bar() as progress:
            check = snapshot.checked(
                snapshot_dir,
                settings,
                extra_keys=extra,
                trust_unsigned=trust_unsigned,
                progress=progress,
            )
    except snapshot.BackupError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"verify failed: {exc}") from None
    manifest = check.manifest
    if check.unverified:
        _unverified(check.unverified)
    if as_json:
        summary = {**manifest.summary(), "ok": True, "signed_by_key": check.key_id}
        console.print_json(json.dumps({**summary, "unverified": check.unverified}))
        return
    facts = manifest.summary()
    signed = f"signed with key {check.key_id}" if check.key_id else "NOT verified"
    say(
        f"{manifest.name}: ok ({signed}; {facts['files']} files, "
        f"{_size(facts['size_bytes'])}, schema {facts['schema_revision']}, taken "
        f"{facts['created_at']} by docchat {facts['docchat_version']})"
    )


@app.command("restore")
def backup_restore(
    snapshot_dir: Annotated[Path, typer.Argument(metavar="SNAPSHOT", help="A snapshot folder.")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Restore over stores that hold data: replace the database, delete every "
            "collection, overwrite the files. Without it, the target must be empty.",
        ),
    ] = False,
    pull_models: Annotated[
        bool,
        typer.Option(
            "--pull-models/--no-pull-models",
            help="Install again the catalog models the snapshot names (snapshots leave them "
            "out; pip, checked by their hash), so the restored deployment answers.",
        ),
    ] = True,
    signing_key_file: KeyFiles = None,
    trust_unsigned: TrustUnsigned = False,
) -> None:
    """Restore a snapshot into empty stores and data directory.

    Restore a snapshot into the configured data directory and stores (empty ones):
    the signature, every path and every hash are checked first, an older schema is
    migrated, registry paths are pointed at where the files now are. Stop the server
    first.

    Example: DOCCHAT_DATA_DIR=/srv/docchat docchat backup restore /backups/docchat-backup-…
    """
    from app.backup import snapshot

    settings = load()
    extra = _keys(signing_key_file)
    try:
        with bar() as progress:
            done = snapshot.restore(
                settings,
                snapshot_dir,
                force=force,
                pull_models=pull_models,
                extra_keys=extra,
                trust_unsigned=trust_unsigned,
                progress=progress,
            )
    except snapshot.BackupError as exc:
        raise fail(
            f"restore refused: {exc}"
            if isinstance(exc, snapshot.SnapshotRefused)
            else f"restore failed: {exc}"
        ) from None
    except Exception as exc:  # a store's own error (busy, unreachable): one line
        raise fail(f"restore failed: {exc}") from None
    migrated = (
        f"migrated from {done.migrated_from} to {done.migrated_to}"
        if done.migrated_from != done.migrated_to
        else f"schema {done.migrated_to}"
    )
    if done.unverified:
        _unverified(done.unverified)
    say(
        f"restored {done.manifest.name} into {settings.data_dir}: {migrated}, "
        f"{done.collections} collections ({done.records} records), {done.files} files"
    )
    for line in done.paths_rewritten:
        say(f"  registry path: {line}")
    for name in done.pulled:
        say(f"  catalog model installed again: {name}")
    for line in done.pull_failures:
        err.print(f"[yellow]warning:[/] could not install {line}", markup=True, highlight=False)
    for name in done.to_pull:
        say(f"  catalog model not installed here: docchat models pull {name}")
    for line in done.missing:
        err.print(f"[yellow]warning:[/] file missing for {line}", markup=True, highlight=False)


@app.command("list")
def backup_list(
    folder: Annotated[
        Path, typer.Argument(help="Folder of snapshots.", envvar=BACKUP_DIR_ENV)
    ] = Path("backups"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The snapshots in a folder, oldest first.

    The snapshots in a folder, oldest first (from their manifests; `verify` checks
    the files)."""
    from app.backup import snapshot

    rows = []
    for path in snapshot.snapshots(folder):
        try:
            rows.append({**snapshot.read_manifest(path).summary(), "path": str(path)})
        except snapshot.BackupError as exc:
            rows.append({"name": path.name, "path": str(path), "error": str(exc)})
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title=f"snapshots in {folder}")
    for column in ("name", "taken", "docchat", "schema", "stores", "size"):
        table.add_column(column)
    for row in rows:
        if "error" in row:
            table.add_row(Text(row["name"]), Text(row["error"]), "", "", "", "")
            continue
        table.add_row(
            Text(row["name"]),
            Text(row["created_at"]),
            Text(row["docchat_version"]),
            Text(str(row["schema_revision"])),
            Text(f"{row['database']} + {row['vectors']} chroma"),
            _size(row["size_bytes"]),
        )
    console.print(table)
