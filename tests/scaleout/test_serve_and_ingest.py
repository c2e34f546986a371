"""A real `docchat serve` answering while a real `docchat ingest` writes: two processes.

On the scale-out stores (Chroma server + PostgreSQL) both run at once and the new
content becomes answerable. On the embedded stores the second writer is refused with a
clear message, and the store is left as it was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.llm.provision import small_chat_model
from app.settings import Settings
from tests.conftest import (
    CORPUS,
    TEST_CANARY,
    docchat_serve,
    free_port,
    make_settings,
    run_docchat,
)
from tests.ingest.test_pipeline import stored_state
from tests.servers import ChromaServer, PostgresServer

PORT_QUESTION = "What port does the widget server listen on by default?"
BACKUP_QUESTION = "How many days are backups kept?"
# Answers are not judged here, only where they come from: keep them short.
MAX_TOKENS = "24"


def docchat_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a docchat process: the test's settings, none of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAT_")}
    env.update(
        {
            "DOCCHAT_DATA_DIR": str(data_dir),
            "DOCCHAT_SECRETS_DIR": str(data_dir / "no-secrets"),
            "DOCCHAT_ENV_FILE": str(data_dir / "no.env"),
            "DOCCHAT_ENV": "test",
            "DOCCHAT_LLM__TEMPERATURE": "0",
            "DOCCHAT_LLM__MAX_TOKENS": MAX_TOKENS,
            "DOCCHAT_LLM__PARALLEL": "2",
            "DOCCHAT_LLM__MODEL_PATH": str(small_chat_model()),
            "DOCCHAT_SECURITY__RATE_LIMIT_PER_MINUTE": "0",
            "DOCCHAT_SECURITY__CANARY": TEST_CANARY,  # greedy answers repeat
            "COLUMNS": "200",
        }
    )
    env.update({f"DOCCHAT_{k.upper()}": v for k, v in settings.items()})
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run_docchat(*args, env=env, timeout=timeout)


def ask(base: str, question: str) -> dict[str, Any]:
    response = httpx.post(
        f"{base}/api/chat", json={"question": question, "stream": False}, timeout=120
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def sources(answer: dict[str, Any]) -> set[str]:
    return {c["source"] for c in answer["citations"]}


@dataclass
class Asked:
    started: float
    ended: float
    status: int
    body: str


class Asker:
    """Asks questions in a thread, one after another, until stopped; records each."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.done: list[Asked] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        questions = [PORT_QUESTION, BACKUP_QUESTION]
        with httpx.Client(timeout=120) as client:
            while not self._stop.is_set():
                question = questions[len(self.done) % len(questions)]
                started = time.monotonic()
                try:
                    response = client.post(
                        f"{self.base}/api/chat", json={"question": question, "stream": False}
                    )
                    status, body = response.status_code, response.text
                except httpx.HTTPError as exc:
                    status, body = 0, repr(exc)
                self.done.append(Asked(started, time.monotonic(), status, body))
                # A user's pace, not a flood: leave the ingest some of the two cores.
                self._stop.wait(0.5)

    def __enter__(self) -> Asker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=180)


def docs_folder(root: Path) -> Path:
    """A docs folder holding only the guide; `add_more` brings two more files."""
    docs = root / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / "guide.md", docs / "guide.md")
    return docs


def add_more(docs: Path) -> None:
    shutil.copytree(CORPUS / "admin", docs / "admin")
    shutil.copy(CORPUS / "notes.txt", docs / "notes.txt")


def test_cli_ingest_while_the_server_answers_on_chroma_server_and_postgresql(
    tmp_path: Path, postgres: PostgresServer, chroma_server: ChromaServer
) -> None:
    env = docchat_env(
        tmp_path / "data",
        vectors__url=chroma_server.url,
        vectors__collection="serve-and-ingest",
        database__url=postgres.new_database(),
    )
    docs = docs_folder(tmp_path)
    first = cli(env, "ingest", str(docs))
    assert first.returncode == 0, first.stderr

    with docchat_serve(env, tmp_path / "server.log") as served:
        base = served.base
        before = ask(base, BACKUP_QUESTION)
        assert "docs/admin/backup.rst" not in sources(before)

        add_more(docs)
        with Asker(base) as asker:
            while len(asker.done) < 1:  # the server is answering when the ingest starts
                time.sleep(0.1)
            ingest_started = time.monotonic()
            second = cli(env, "ingest", str(docs))
            ingest_ended = time.monotonic()
        assert second.returncode == 0, second.stderr
        assert "Traceback" not in second.stderr
        during = [a for a in asker.done if a.started < ingest_ended and a.ended > ingest_started]
        assert len(during) >= 2, f"only {len(during)} answers overlapped the ingest"
        failed = [(a.status, a.body[:300]) for a in asker.done if a.status != 200]
        assert failed == []

        after = ask(base, BACKUP_QUESTION)
        assert after["answered_from_docs"] is True
        assert "docs/admin/backup.rst" in sources(after)
        cited = next(c for c in after["citations"] if c["source"] == "docs/admin/backup.rst")
        document = httpx.get(f"{base}/api/documents/{cited['document_id']}", timeout=30)
        assert "14 days" in document.text
        assert "docs/guide.md" in sources(ask(base, PORT_QUESTION))
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log, log[-3000:]


def test_second_writer_is_refused_on_the_embedded_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = docchat_env(data)
    docs = docs_folder(tmp_path)
    assert cli(env, "ingest", str(docs)).returncode == 0
    settings: Settings = make_settings(data)
    before = stored_state(settings)

    with docchat_serve(env, tmp_path / "server.log") as served:
        base = served.base
        assert "docs/guide.md" in sources(ask(base, PORT_QUESTION))
        add_more(docs)
        started = time.monotonic()
        refused = cli(env, "ingest", str(docs))
        refused_s = time.monotonic() - started
        assert refused.returncode == 1
        assert "busy" in refused.stderr
        assert "one writer at a time" in refused.stderr
        assert "DOCCHAT_VECTORS__URL" in refused.stderr  # the way out is named
        assert "Traceback" not in refused.stderr
        # The server holding the store is unaffected.
        assert "docs/guide.md" in sources(ask(base, PORT_QUESTION))

    assert stored_state(settings) == before
    # With the server gone, the same ingest goes through on the intact store.
    started = time.monotonic()
    again = cli(env, "ingest", str(docs))
    again_s = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    # Refused at once, not after waiting for the store: in less than twice the time the
    # same ingest takes to run through (a ratio of this test, where a fixed 60 s could
    # fail on a loaded machine; a writer that waited would wait for the server to stop).
    assert refused_s < 2 * again_s, (refused_s, again_s)
    state = stored_state(settings)
    assert {d[0] for d in state["docs"]} == {  # type: ignore[attr-defined]
        "docs/guide.md",
        "docs/admin/backup.rst",
        "docs/notes.txt",
    }


def test_ingest_says_which_server_it_cannot_reach(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    no_chroma = cli(
        docchat_env(tmp_path / "a", vectors__url=f"http://127.0.0.1:{closed}"),
        "ingest",
        str(CORPUS / "guide.md"),
    )
    assert no_chroma.returncode == 1
    assert f"cannot reach the Chroma server at http://127.0.0.1:{closed}" in no_chroma.stderr
    assert "Traceback" not in no_chroma.stderr

    no_database = cli(
        docchat_env(
            tmp_path / "b",
            database__url=f"postgresql+psycopg://docchat:pw-canary-4711@127.0.0.1:{closed}/x",
        ),
        "ingest",
        str(CORPUS / "guide.md"),
    )
    assert no_database.returncode == 1
    assert "cannot reach the database" in no_database.stderr
    assert "DOCCHAT_DATABASE__URL" in no_database.stderr
    assert "Traceback" not in no_database.stderr
    assert "pw-canary-4711" not in no_database.stdout + no_database.stderr
