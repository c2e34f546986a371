"""Real servers on loopback for the scale-out storage path: PostgreSQL and a Chroma server.

Registered as a pytest plugin by tests/conftest.py, so any test may ask for `postgres`
or `chroma_server`. Each server is started once per test session in a temporary folder
and stopped at the end; tests keep apart by using a fresh database (`postgres.new_database`)
and their own collection names.

Where PostgreSQL is not installed the tests that need it are skipped locally, but fail
when the environment variable CI is set: CI has to prove this path, not skip it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

from tests.conftest import free_port
from tests.needs import missing

# Debian's layout; DOCCHAT_TEST_PG_BINDIR points elsewhere (e.g. another major version).
PG_BINDIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
STARTUP_TIMEOUT_S = 60


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI, where a server the test needs cannot be started."""
    missing(reason)


def _stop(process: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _pg_bindir() -> Path | None:
    configured = os.environ.get("DOCCHAT_TEST_PG_BINDIR")
    candidates = [Path(configured)] if configured else PG_BINDIRS
    if not configured and (on_path := shutil.which("initdb")):
        candidates.append(Path(on_path).parent)
    return next(
        (d for d in candidates if (d / "initdb").exists() and (d / "postgres").exists()), None
    )


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster; `url()` gives SQLAlchemy URLs with the password."""

    port: int
    user: str
    password: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database,
            autocommit=True,
        )

    def new_database(self) -> str:
        """Create an empty database and return its URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on 127.0.0.1 (password auth over TCP), for the session."""
    bindir = _pg_bindir()
    if bindir is None:
        unavailable("PostgreSQL server binaries not found (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed (pip install -e '.[postgres]')")
    # PostgreSQL refuses to run as root: then the cluster belongs to the postgres user.
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no postgres user to run PostgreSQL as")
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    # Outside pytest's temp tree, which only root may enter.
    root = Path(tempfile.mkdtemp(prefix="docchat-pg-"))
    try:
        with _postgres_cluster(bindir, root, as_user) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _postgres_cluster(
    bindir: Path, root: Path, as_user: dict[str, Any]
) -> Iterator[PostgresServer]:
    """initdb a cluster in `root`, run it on a free loopback port until the block ends."""
    if as_user:
        os.chown(root, as_user["user"], as_user["group"])
    password = secrets.token_urlsafe(16)
    pwfile = root / "pw"
    pwfile.write_text(password)
    if as_user:
        os.chown(pwfile, as_user["user"], as_user["group"])
    data = root / "data"
    initdb = subprocess.run(
        [
            *(str(bindir / "initdb"), "-D", str(data), "-U", "docchat", "--pwfile", str(pwfile)),
            # Password over TCP, as a deployment has it; the socket is not used.
            *("--auth-host=scram-sha-256", "--auth-local=scram-sha-256"),
            *("-E", "UTF8", "--locale=C.UTF-8"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        **as_user,
    )
    assert initdb.returncode == 0, initdb.stdout + initdb.stderr
    port = free_port()
    log_path = root / "postgres.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                *(str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root)),
                *("-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"),
                # Throwaway data: durability costs time and buys nothing here.
                *("-c", "fsync=off"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=root,
            **as_user,
        )
    server = PostgresServer(port=port, user="docchat", password=password)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            assert process.poll() is None, log_path.read_text()[-3000:]
            try:
                server.connect().close()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        _stop(process, signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind docchat supports: a SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'x.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@dataclass
class ChromaServer:
    """A `chroma run` process; `url` is what DOCCHAT_VECTORS__URL takes."""

    url: str
    path: Path


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """A real Chroma server (the `chroma` command of this environment) on loopback."""
    with chroma_running(tmp_path_factory.mktemp("chroma-server")) as server:
        yield server


@contextlib.contextmanager
def chroma_running(root: Path) -> Iterator[ChromaServer]:
    """A Chroma server of its own, on a folder in `root`, until the block ends (for
    tests that need an empty one, such as a restore into a fresh server pair)."""
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        found = shutil.which("chroma")
        if found is None:
            unavailable("the chroma command is not installed")
        chroma = Path(str(found))
    port = free_port()
    log_path = root / "chroma.log"
    command = [str(chroma), "run", "--path", str(root / "db"), "--host", "127.0.0.1"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            assert process.poll() is None, log_path.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "chroma run did not answer its heartbeat"
            time.sleep(0.2)
        yield ChromaServer(url, root / "db")
    finally:
        _stop(process)
