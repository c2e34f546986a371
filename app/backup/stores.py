"""Taking each store's part of a snapshot, and putting it back.

- SQLite: the online backup API (`sqlite3.Connection.backup`), a consistent copy taken
  page by page while the server writes.
- PostgreSQL: `pg_dump` in its custom format, restored with `pg_restore`; the password
  travels in the environment (PGPASSWORD), never on a command line.
- Chroma: every collection exported through the client (ids, vectors, texts, metadata,
  the collection's own metadata and index configuration), the same format from an
  embedded store or a server, so either restores into either. A running server holds
  the embedded store's lock, so its folder is first copied aside the way a crash would
  leave it: every file copied (the SQLite part through the backup API), and the copy
  kept only if no file changed while it was taken; that copy is opened and exported.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, make_url

from app.store.vectors import ExportPage, VectorStore

Advance = Callable[[int], None]
CHUNK = 8 * 2**20
CHROMA_SQLITE = "chroma.sqlite3"
# Files of a Chroma folder that are not its state (our lock, SQLite's side files).
CHROMA_SKIP = (".docchat.lock", "-journal", "-wal", "-shm")
COPY_ATTEMPTS = 6
# URL query parameters that libpq also reads from the environment.
LIBPQ_QUERY = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "options": "PGOPTIONS",
}


class BackupError(RuntimeError):
    """A snapshot cannot be taken or restored; the message says why and what to do."""


class SnapshotRefused(BackupError):
    """A snapshot that must not be restored (corrupt, tampered with, newer, incomplete)
    or a target that is not empty."""


def _nothing(_n: int) -> None:
    pass


# -- files ---------------------------------------------------------------------------


def copy_file(source: Path, target: Path, advance: Advance = _nothing) -> tuple[str, int]:
    """Copy a file (whole or not at all), returning the sha256 and size of what was
    copied: the bytes read, so a file replaced meanwhile is described as copied. The
    copy keeps the times, not the mode: it gets the mode of any new file (umask), so a
    snapshot's 600 or a source's executable bit does not travel."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as src, partial.open("wb") as out:
        while chunk := src.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            advance(len(chunk))
    facts = source.stat()
    os.utime(partial, ns=(facts.st_atime_ns, facts.st_mtime_ns))
    os.replace(partial, target)
    return digest.hexdigest(), size


# -- SQLite --------------------------------------------------------------------------


def sqlite_path(url: str) -> Path:
    """The file of a SQLite URL."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def sqlite_backup(source: Path, target: Path, advance: Advance = _nothing) -> None:
    """A consistent copy of a live SQLite database (the online backup API: pages are
    copied in steps; a write meanwhile restarts the copy of what changed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    done = [0]

    def step(_status: int, remaining: int, total: int) -> None:
        copied = total - remaining
        advance(max(0, copied - done[0]))
        done[0] = copied

    try:
        with dst:
            src.backup(dst, pages=256, progress=step)
        # A stand-alone file: no write-ahead log beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def sqlite_pages(source: Path) -> int:
    """Pages in a SQLite file (the backup's progress unit)."""
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])


def sqlite_revision(path: Path) -> str | None:
    """The alembic revision a SQLite file holds (None: no schema)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()
    return str(row[0]) if row else None


def sqlite_has_tables(path: Path) -> bool:
    """Whether a SQLite file exists and holds any table."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()
        return int(row[0]) > 0
    finally:
        conn.close()


# -- PostgreSQL ----------------------------------------------------------------------


def pg_tool(name: str) -> str:
    """`pg_dump` or `pg_restore`: from PATH, else the newest Debian install."""
    found = shutil.which(name)
    if found:
        return found
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (bindir / name).exists():
            return str(bindir / name)
    raise BackupError(
        f"{name} is not installed: install PostgreSQL's client tools (Debian: apt-get "
        "install postgresql-client; the same major version as the server, or newer)"
    )


def _libpq_env(url: URL) -> dict[str, str]:
    """The connection as libpq environment variables: no password on a command line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    pairs = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password if isinstance(url.password, str) else None,
        "PGDATABASE": url.database,
    }
    env.update({k: v for k, v in pairs.items() if v})
    for key, value in url.query.items():  # sslmode=require and the like
        if key in LIBPQ_QUERY and isinstance(value, str):
            env[LIBPQ_QUERY[key]] = value
    env["PGCONNECT_TIMEOUT"] = env.get("PGCONNECT_TIMEOUT", "10")
    env["PGAPPNAME"] = "docchat-backup"
    return env


def _run_pg(command: list[str], url: str) -> None:
    done = subprocess.run(
        command, env=_libpq_env(make_url(url)), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        # libpq's messages name host, port and user, never the password.
        message = " ".join((done.stderr or done.stdout).split())[-2000:]
        raise BackupError(f"{Path(command[0]).name} failed: {message}")


def pg_dump(url: str, target: Path) -> None:
    """The whole database in pg_dump's custom format (one consistent snapshot)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _run_pg(
        [pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "-f", str(target)],
        url,
    )


def pg_restore(url: str, dump: Path, *, clean: bool) -> None:
    """Load a dump into the database, in one transaction."""
    command = [pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error"]
    command += ["--clean", "--if-exists"] if clean else ["--single-transaction"]
    parsed = make_url(url)
    _run_pg([*command, "-d", parsed.database or "postgres", str(dump)], url)


def sql_revision(url: str) -> str | None:
    """The alembic revision of a database reached by URL (None: no schema)."""
    engine = create_engine(url, hide_parameters=True)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return str(value) if value else None
    finally:
        engine.dispose()


def sql_tables(url: str) -> list[str]:
    """Tables in a database reached by URL (its default schema)."""
    engine = create_engine(url, hide_parameters=True)
    try:
        with engine.connect() as conn:
            return list(inspect(conn).get_table_names())
    finally:
        engine.dispose()


# -- Chroma --------------------------------------------------------------------------


def _chroma_state(folder: Path) -> dict[str, tuple[int, int]]:
    state = {}
    for path in folder.rglob("*"):
        # A journal or log counts: one there means a write was under way.
        if path.is_file() and not path.name.endswith((".docchat.lock", "-shm")):
            stat = path.stat()
            state[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns)
    return state


def copy_embedded_chroma(source: Path, target: Path) -> None:
    """Copy an embedded Chroma folder that a server may hold and write, as a crash at
    one instant would leave it: copy everything, and keep the copy only if no file
    changed meanwhile (else try again, a few times, then give up)."""
    if not (source / CHROMA_SQLITE).exists():
        target.mkdir(parents=True, exist_ok=True)
        return
    for attempt in range(COPY_ATTEMPTS):
        before = _chroma_state(source)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for rel in before:
            if rel.endswith(CHROMA_SKIP):
                continue  # a rollback journal mid-write shows as a change below
            if rel == CHROMA_SQLITE:
                sqlite_backup(source / rel, target / rel)
            else:
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / rel, target / rel)
        if _chroma_state(source) == before:
            return
        time.sleep(0.5 * (attempt + 1))
    raise BackupError(
        f"the embedded vector store at {source} kept changing while it was copied (an "
        "ingest or upload is writing): try again when it has finished"
    )


@dataclass
class CollectionDump:
    """One collection as written into a snapshot."""

    name: str
    count: int
    dimension: int | None
    files: list[Path]
    changed: bool = False  # a server's collection whose size changed while exported


def export_collection(
    store: VectorStore, name: str, folder: Path, advance: Advance = _nothing
) -> CollectionDump:
    """Write a collection: collection.json (metadata, index configuration, count,
    dimension), records.jsonl (id, document, metadata per line, in the store's order)
    and embeddings.f32 (the vectors, little-endian float32 rows, in the same order)."""
    folder.mkdir(parents=True, exist_ok=True)
    metadata, configuration = store.collection_settings(name)
    before = store.collection_count(name)
    count = 0
    dimension: int | None = None
    with (
        (folder / "records.jsonl").open("w", encoding="utf-8") as records,
        (folder / "embeddings.f32").open("wb") as vectors,
    ):
        for page in store.export_pages(name):
            if len(page.ids) and page.embeddings.ndim == 2:
                dimension = int(page.embeddings.shape[1])
            for chunk_id, document, meta in zip(
                page.ids, page.documents, page.metadatas, strict=True
            ):
                line = {"id": chunk_id, "document": document, "metadata": meta}
                records.write(json.dumps(line, ensure_ascii=False) + "\n")
            vectors.write(page.embeddings.astype("<f4").tobytes())
            count += len(page.ids)
            advance(len(page.ids))
    after = store.collection_count(name)
    info = {
        "name": name,
        "metadata": metadata,
        "configuration": configuration,
        "count": count,
        "dimension": dimension,
    }
    (folder / "collection.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    files = [folder / "collection.json", folder / "records.jsonl", folder / "embeddings.f32"]
    return CollectionDump(name, count, dimension, files, changed=not before == after == count)


def read_collection(folder: Path, page: int = 1000) -> Iterator[ExportPage]:
    """The pages of an exported collection, as `export_collection` wrote them."""
    info = json.loads((folder / "collection.json").read_text())
    dimension = info["dimension"]
    with (
        (folder / "records.jsonl").open(encoding="utf-8") as records,
        (folder / "embeddings.f32").open("rb") as vectors,
    ):
        while True:
            lines = [json.loads(line) for _, line in zip(range(page), records, strict=False)]
            if not lines:
                return
            raw = vectors.read(len(lines) * dimension * 4)
            embeddings = np.frombuffer(raw, dtype="<f4").reshape(len(lines), dimension)
            yield ExportPage(
                [line["id"] for line in lines],
                embeddings.astype(np.float32),
                [line["document"] for line in lines],
                [line["metadata"] for line in lines],
            )


def import_collection(store: VectorStore, folder: Path, advance: Advance = _nothing) -> int:
    """Create the collection as it was and put its records back; the number restored."""
    info: dict[str, Any] = json.loads((folder / "collection.json").read_text())
    store.create_as(info["name"], info["metadata"], info["configuration"])
    restored = 0
    if info["count"]:
        for page in read_collection(folder):
            store.add_records(info["name"], page)
            restored += len(page.ids)
            advance(len(page.ids))
    if restored != info["count"]:
        raise BackupError(
            f"collection {info['name']}: {restored} records restored, the snapshot lists "
            f"{info['count']}"
        )
    return restored
