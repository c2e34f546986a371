"""Putting a snapshot back: checked whole first (verify.py), then the database, the
vectors, the files and the registered model and adapter files, the schema migrated to
this code's and the registry pointed at where the files now are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.backup import stores
from app.backup.manifest import Manifest, code_revision
from app.backup.paths import Plan, holds
from app.backup.progress import Progress, Quiet
from app.backup.stores import SnapshotRefused
from app.backup.verify import checked
from app.llm.catalog import CATALOG
from app.settings import Settings
from app.store import audit
from app.store.db import Database
from app.store.models import Adapter, ChatModel
from app.store.vectors import VectorStore


@dataclass
class Restored:
    """What a restore did, for the CLI to report."""

    manifest: Manifest
    migrated_from: str | None
    migrated_to: str
    collections: int
    records: int
    files: int
    paths_rewritten: list[str] = field(default_factory=list)
    to_pull: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)  # catalog models installed again
    pull_failures: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unverified: str | None = None  # why its signature was not checked (--trust-unsigned)


def _target_problems(settings: Settings, steps: Plan, store: VectorStore) -> list[str]:
    """What the target already holds (a restore needs empty stores)."""
    problems = []
    url = settings.database_url
    if make_url(url).get_backend_name() == "sqlite":
        path = stores.sqlite_path(url)
        if stores.sqlite_has_tables(path):
            problems.append(f"the database {path} holds tables")
    elif tables := stores.sql_tables(url):
        problems.append(f"the PostgreSQL database holds {len(tables)} tables")
    if names := store.collection_names():
        problems.append(f"the vector store {store.location} holds {len(names)} collections")
    clashes = [target for target in steps.files.values() if target.exists()]
    if clashes:
        problems.append(
            f"the data directory holds {len(clashes)} files the snapshot has "
            f"(e.g. {clashes[0].relative_to(settings.data_dir)})"
        )
    return problems


def _check_database_kind(settings: Settings, manifest: Manifest) -> None:
    kind = make_url(settings.database_url).get_backend_name()
    if kind != manifest.database.get("kind"):
        raise SnapshotRefused(
            f"{manifest.name} holds a {manifest.database.get('kind')} database and this "
            f"docchat is set to {kind}: restore with the same kind of database (set "
            "database.url), then move the data with the tools of your choice"
        )


def restore(
    settings: Settings,
    snapshot: Path,
    *,
    force: bool = False,
    pull_models: bool = True,
    extra_keys: Sequence[bytes] = (),
    trust_unsigned: bool = False,
    actor: str = "cli",
    progress: Progress | None = None,
) -> Restored:
    """Put a snapshot back into empty stores (every path and hash checked first), migrate
    its schema to this code's, and point the registry at the files where they now are.

    `force` restores over stores that hold data: the database is replaced, every
    collection deleted first and the snapshot's files overwritten. `extra_keys` and
    `trust_unsigned`: see `checked`; a snapshot let through unverified says so in the
    audit trail."""
    progress = progress or Quiet()
    check = checked(
        snapshot,
        settings,
        extra_keys=extra_keys,
        trust_unsigned=trust_unsigned,
        progress=progress,
    )
    manifest, steps = check.manifest, check.plan
    _check_database_kind(settings, manifest)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The writer of an embedded store: refused (busy) while a server holds it.
    store = VectorStore(url=settings.vectors.url, path=settings.chroma_path, writer=True)
    try:
        problems = _target_problems(settings, steps, store)
        if problems and not force:
            raise SnapshotRefused(
                "the target is not empty: "
                + "; ".join(problems)
                + ". Restore into an empty data directory and empty stores, or pass --force "
                "to replace what they hold"
            )
        _put_database(settings, steps.database, manifest, clean=bool(problems), progress=progress)
        db = Database(settings.database_url)
        try:
            db.migrate()  # an older snapshot's schema, brought to this code's
            if problems:
                store.drop_everything()
            collections, records = _put_vectors(store, steps, manifest, progress)
            files = _put_files(steps, progress)
            result = Restored(
                manifest,
                manifest.schema_revision,
                code_revision(),
                collections,
                records,
                files,
                unverified=check.unverified,
            )
            _put_registered(steps, db, result, progress, pull_models)
            audit.record_in(
                db,
                actor,
                "backup.restore",
                manifest.name,
                reason=f"restored unverified (--trust-unsigned): {check.unverified}"
                if check.unverified
                else None,
                detail={
                    "created_at": manifest.created_at,
                    "schema_from": manifest.schema_revision,
                    "schema_to": result.migrated_to,
                    "forced": bool(problems),
                    "collections": collections,
                    "to_pull": result.to_pull,
                    "signed_by_key": check.key_id,
                    "trusted_unsigned": check.unverified,
                },
            )
        finally:
            db.close()
    finally:
        store.close()
    return result


def _put_database(
    settings: Settings, source: Path, manifest: Manifest, *, clean: bool, progress: Progress
) -> None:
    progress.stage("database", source.stat().st_size)
    if manifest.database["kind"] == "sqlite":
        target = stores.sqlite_path(settings.database_url)
        for side in ("-wal", "-shm", "-journal"):
            target.with_name(target.name + side).unlink(missing_ok=True)
        stores.copy_file(source, target, progress.advance)
    else:
        stores.pg_restore(settings.database_url, source, clean=clean)
        progress.advance(source.stat().st_size)


def _put_vectors(
    store: VectorStore, steps: Plan, manifest: Manifest, progress: Progress
) -> tuple[int, int]:
    collections = manifest.vectors.get("collections", [])
    progress.stage("vectors", sum(c["count"] for c in collections))
    records = 0
    for folder in steps.collections:
        records += stores.import_collection(store, folder, progress.advance)
    return len(steps.collections), records


def _put_files(steps: Plan, progress: Progress) -> int:
    progress.stage("files", sum(source.stat().st_size for source in steps.files))
    for source, target in steps.files.items():
        stores.copy_file(source, target, progress.advance)
    return len(steps.files)


def _put_registered(
    steps: Plan,
    db: Database,
    result: Restored,
    progress: Progress,
    pull_models: bool,
) -> None:
    """Place each registered file where the plan says (a copy only ever lands on its
    checked target, or the spare name beside it) and point the registry there."""
    homes: dict[tuple[str, str], Path] = {}
    progress.stage(
        "model and adapter files", sum(p.entry["size"] for p in steps.registered if p.stored)
    )
    for placed in steps.registered:
        entry, kind, home = placed.entry, placed.kind, placed.home
        if (
            placed.stored
            and placed.target
            and placed.spare
            and not holds(home, entry["sha256"], entry["size"])
        ):
            if home.exists():  # another file by that name: keep it, and ours beside it
                home = placed.spare
            stores.copy_file(placed.stored, home, progress.advance)
        elif not home.is_file() and entry.get("catalog") and pull_models:
            # A catalog model is not in the snapshot: the catalog provisions the same
            # bytes again (checked by their hash), so the restored deployment answers.
            from app.llm.catalog import PullError, pull

            try:
                home = pull(CATALOG[entry["catalog"]], home.parent)
                result.pulled.append(entry["catalog"])
            except PullError as exc:  # the index unreachable, say: the data is restored
                result.pull_failures.append(f"{entry['catalog']}: {exc}")
        if not home.is_file():
            if entry.get("catalog"):
                result.to_pull.append(entry["catalog"])
            else:
                result.missing.append(f"{kind[:-1]} {entry['name']}: {home}")
        homes[(kind, entry["name"])] = home
    with db.session() as session:
        rows: list[ChatModel | Adapter] = [*session.scalars(select(ChatModel))]
        rows += session.scalars(select(Adapter))
        for row in rows:
            kind = "models" if isinstance(row, ChatModel) else "adapters"
            found = homes.get((kind, row.name))
            if found is not None and row.path != str(found):
                result.paths_rewritten.append(f"{kind[:-1]} {row.name}: {row.path} -> {found}")
                row.path = str(found)
