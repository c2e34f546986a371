"""Shared fixtures: the real small models, loaded once, and apps on temporary stores.

Nothing here is a stand-in: SmolLM2 through llama.cpp, all-MiniLM through
sentence-transformers, an on-disk Chroma and a SQLite file, each in a temp folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from app.components import Components, build_components, open_ingestor
from app.llm.embedder import Embedder
from app.llm.engine import LlamaEngine
from app.llm.provision import default_embedding_model, small_chat_model
from app.main import create_app
from app.settings import Settings

# The PostgreSQL and Chroma servers of the scale-out storage tests.
pytest_plugins = ["tests.servers"]

# The tests run the small SmolLM2 that pip installs, not the larger default model that
# `make run` serves, and show the model's own words for an unsupported answer (so what
# was streamed can be compared with what was stored): every settings object and every
# `docchat` process they start reads these. The defaults have tests of their own
# (tests/llm/test_models.py, tests/telemetry/test_observability.py).
os.environ.setdefault("DOCCHAT_LLM__MODEL_PATH", str(small_chat_model()))
os.environ.setdefault("DOCCHAT_RAG__UNGROUNDED_ACTION", "flag")
# One system-prompt canary for every process, so that greedy answers repeat between them
# (tests/security/test_canary_pin.py shows what an unset one does).
TEST_CANARY = "7e3f0a9c41d2b865"
os.environ.setdefault("DOCCHAT_SECURITY__CANARY", TEST_CANARY)

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = FIXTURES / "corpus"


@dataclass
class Models:
    """The two real models, shared by the whole session (loading costs seconds)."""

    embedder: Embedder
    engine: LlamaEngine


@pytest.fixture(scope="session")
def models() -> Iterator[Models]:
    embedder = Embedder(default_embedding_model())
    settings = Settings(llm={"n_ctx": 4096, "temperature": 0.0, "max_tokens": 96})
    engine = LlamaEngine(settings.llm, small_chat_model())
    yield Models(embedder, engine)
    engine.close()


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings on a temp data dir; greedy decoding so answers repeat."""
    values: dict[str, object] = {
        "env": "test",
        "data_dir": data_dir,
        "llm": {"n_ctx": 4096, "temperature": 0.0, "max_tokens": 96},
        # Off here: the suite sends more than a user would (and many wrong keys on
        # purpose); tests/security covers both limits.
        "security": {
            "rate_limit_per_minute": 0,
            "auth_failures_per_minute": 0,
            "canary": TEST_CANARY,
        },
    }
    values.update(overrides)
    # _env_file=None and a missing secrets dir: tests ignore the developer's own .env.
    return Settings(_env_file=None, _secrets_dir=str(data_dir / "no-secrets"), **values)  # type: ignore[arg-type]


def ingest_into(settings: Settings, embedder: Embedder, *roots: Path) -> None:
    """Run a real ingest into the settings' stores, then release the writer lock."""
    with open_ingestor(settings, embedder=embedder, max_file_bytes=10_000_000) as ingestor:
        ingestor.run(list(roots), settings.vectors.collection)


@pytest.fixture(scope="session")
def corpus_settings(tmp_path_factory: pytest.TempPathFactory, models: Models) -> Settings:
    """A data dir holding the fixture corpus, ingested once for the session."""
    root = tmp_path_factory.mktemp("corpus-data")
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    settings = make_settings(root / "data")
    ingest_into(settings, models.embedder, corpus)
    return settings


@pytest.fixture(scope="session")
def components(corpus_settings: Settings, models: Models) -> Iterator[Components]:
    # A reader, unlike the real server, so that `docchat ask` may run beside it in tests.
    components = build_components(
        corpus_settings, writer=False, embedder=models.embedder, engine=models.engine
    )
    yield components
    components.close()  # the stores it opened; the shared models stay open


@pytest.fixture
def client(components: Components) -> Iterator[TestClient]:
    """The real app in-process; the context manager runs start-up and shutdown."""
    with TestClient(create_app(components.settings, components)) as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(
    base: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120
) -> None:
    """Wait until a `docchat serve` process answers /readyz (fail if it dies)."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "docchat did not become ready"
        time.sleep(0.3)


@dataclass
class Served:
    """A running `docchat serve` process and where it answers."""

    base: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def docchat_serve(env: dict[str, str], log: Path, cwd: Path | None = None) -> Iterator[Served]:
    """A real `docchat serve` subprocess on a free loopback port, ready when yielded;
    stopped with SIGTERM afterwards (killed if it has not exited within 60 s)."""
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_ready(served.base, process, log)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_in_thread(app: object, port: int | None = None) -> Iterator[str]:
    """Run an app behind uvicorn on a loopback port (a free one unless given: a sign-in
    test's must be the one the provider knows) until the generator closes."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("live server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="session")
def live_server(components: Components) -> Iterator[str]:
    """The real app behind uvicorn on a loopback port, for real HTTP clients."""
    yield from serve_in_thread(create_app(components.settings, components))


def with_auth(settings: Settings, **security: object) -> Settings:
    """The same settings with API keys required (and any other security values)."""
    return settings.model_copy(
        update={"security": settings.security.model_copy(update={"auth_enabled": True, **security})}
    )


@pytest.fixture(scope="session")
def keys(components: Components) -> dict[str, str]:
    """One key per scope, in the corpus database."""
    store = components.guards.keys
    return {scope: store.create(f"test-{scope}", scope) for scope in ("chat", "ingest", "admin")}  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def live_server_auth(components: Components, keys: dict[str, str]) -> Iterator[tuple[str, str]]:
    """The real app with authentication on, and a chat key for it."""
    app = create_app(with_auth(components.settings), components)
    for base in serve_in_thread(app):
        yield base, keys["chat"]


def run_docchat(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`docchat ARGS` as a real process, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def auth_client(components: Components) -> Iterator[TestClient]:
    """The real app with API keys required."""
    with TestClient(create_app(with_auth(components.settings), components)) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    """The header that carries a key."""
    return {"Authorization": f"Bearer {key}"}
