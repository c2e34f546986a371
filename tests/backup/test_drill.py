"""The backup drill, as an operator would run it, on both storage pairs.

A real `docchat serve` answers, users converse and rate, a reviewer curates and builds a
dataset; `docchat backup create` runs as its own process while questions keep arriving;
everything is wiped; the snapshot is verified and restored into a fresh data directory
(and, scaled out, a fresh PostgreSQL database and an empty Chroma server); a server on
the restored stores gives the same questions the same citations (greedy decoding), and
the conversation, feedback, curated examples, dataset and model registry are there."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from app.backup import signing
from tests.conftest import CORPUS, Models, docchat_serve, ingest_into, make_settings, run_docchat
from tests.servers import PostgresServer, chroma_running

# The operator keeps the signing key in the secret store: the new machine has it too.
SIGNING_KEY = "drill-backup-signing-key-0123456789abcdefgh"
# Its package is installed with the tests' model, so it is pulled without a network.
CATALOG_MODEL = "smollm2-135m-instruct-q4_1"
QUESTIONS = [
    "What port does the widget server listen on by default?",
    "How do I check that the command-line tool is installed?",
    "Where is the widget config file?",
]


def docchat(env: dict[str, str], *args: str, ok: bool = True) -> str:
    done = run_docchat(*args, env=env, timeout=600)
    if ok:
        assert done.returncode == 0, f"docchat {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    else:
        assert done.returncode != 0, done.stdout
    return done.stdout + done.stderr


def environment(data_dir: Path, stores: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "DOCCHAT_DATA_DIR": str(data_dir),
        "DOCCHAT_SECRETS_DIR": str(data_dir / "no-secrets"),
        "DOCCHAT_ENV": "test",
        "DOCCHAT_LLM__TEMPERATURE": "0",
        "DOCCHAT_LLM__MAX_TOKENS": "48",
        "DOCCHAT_SECURITY__RATE_LIMIT_PER_MINUTE": "0",
        "DOCCHAT_BACKUP__SIGNING_KEY": SIGNING_KEY,
        "COLUMNS": "200",
        **stores,
    }


def citations(answer: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What an answer cites, without the rounded score."""
    return [
        (c["n"], c["source"], c["section"], c["document_id"], c["chunk"])
        for c in answer["citations"]
    ]


def ask(client: httpx.Client, question: str, conversation: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"question": question, "stream": False}
    if conversation:
        body["conversation_id"] = conversation
    reply = client.post("/api/chat", json=body)
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


@contextmanager
def load(base: str, threads: int = 3) -> Iterator[list[tuple[float, float, int]]]:
    """Questions from a few users at once until the block ends: (start, end, status)."""
    results: list[tuple[float, float, int]] = []
    stop = threading.Event()

    def user(n: int) -> None:
        with httpx.Client(base_url=base, timeout=300) as client:
            while not stop.is_set():
                start = time.monotonic()
                reply = client.post(
                    "/api/chat", json={"question": QUESTIONS[n % len(QUESTIONS)], "stream": False}
                )
                results.append((start, time.monotonic(), reply.status_code))

    workers = [threading.Thread(target=user, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield results
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=300)


def state(env: dict[str, str]) -> dict[str, Any]:
    """What must survive, through the CLI (paths aside: they move). The four reads run
    at once: each is a process that spends seconds importing."""
    commands = {
        "models": ("models", "list", "--json"),
        "dataset": ("dataset", "show", "support", "--json"),
        "feedback": ("feedback", "list", "--json"),
        "examples": ("curate", "list", "--json"),
    }
    with ThreadPoolExecutor(len(commands)) as pool:
        futures = {k: pool.submit(docchat, env, *args) for k, args in commands.items()}
    out = {k: json.loads(f.result()) for k, f in futures.items()}
    return {
        "feedback": out["feedback"],
        "examples": out["examples"],
        "dataset": {k: v for k, v in out["dataset"].items() if k != "path"},
        "models": [{k: v for k, v in m.items() if k != "path"} for m in out["models"]],
    }


def drill(
    tmp_path: Path,
    models: Models,
    source: dict[str, str],
    target: dict[str, str],
    *,
    catalog: bool = False,
) -> None:
    """`catalog`: the served model comes from the catalog (as `make run`'s does), which
    snapshots leave out and restore installs again."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("guide.md", "notes.txt"):
        shutil.copy(CORPUS / name, corpus / name)
    overrides: dict[str, Any] = {}
    if "DOCCHAT_VECTORS__URL" in source:
        overrides["vectors"] = {"url": source["DOCCHAT_VECTORS__URL"]}
        overrides["database"] = {"url": source["DOCCHAT_DATABASE__URL"]}
    settings = make_settings(tmp_path / "data", **overrides)
    ingest_into(settings, models.embedder, corpus)
    env = environment(settings.data_dir, source)
    backups = tmp_path / "backups"
    if catalog:
        docchat(env, "models", "pull", CATALOG_MODEL)
        docchat(env, "models", "activate", CATALOG_MODEL, "--force", "--no-evaluate")

    # 1. Users converse and rate; a reviewer curates and builds a dataset.
    with (
        docchat_serve(env, tmp_path / "serve.log") as served,
        httpx.Client(base_url=served.base, timeout=300) as client,
    ):
        before = {q: citations(ask(client, q)) for q in QUESTIONS}
        first = ask(client, QUESTIONS[0])
        second = ask(client, QUESTIONS[1], first["conversation_id"])
        for answer, rating in ((first, "up"), (second, "down")):
            rated = client.post(
                f"/api/messages/{answer['message_id']}/feedback", json={"rating": rating}
            )
            assert rated.status_code in (200, 201), rated.text
        docchat(env, "curate", "accept", first["message_id"])
        docchat(env, "curate", "correct", second["message_id"], "--answer", "Run widgetctl -V.")
        docchat(env, "dataset", "build", "support")
        conversation = client.get(f"/api/conversations/{first['conversation_id']}").json()

        # 2. The backup, taken while questions keep coming.
        with load(served.base) as answered:
            time.sleep(2)
            started = time.monotonic()
            out = docchat(env, "backup", "create", "--to", str(backups), "--keep", "3")
            ended = time.monotonic()
        assert answered, "no question was answered during the backup"
        assert all(status == 200 for _, _, status in answered), answered
        overlapped = [r for r in answered if r[0] < ended and r[1] > started]
        assert overlapped, "no answer ran while the backup ran"
    kept = state(env)
    (snapshot,) = backups.iterdir()
    assert f"snapshot {snapshot}" in out
    assert "Traceback" not in out

    # 3. Disaster: everything is gone.
    shutil.rmtree(settings.data_dir)

    # 4. Verify and restore onto a fresh data directory (and fresh servers).
    fresh = tmp_path / "restored" / "data"
    renv = environment(fresh, target)
    assert "ok" in docchat(renv, "backup", "verify", str(snapshot))
    restored = docchat(renv, "backup", "restore", str(snapshot))
    assert f"restored {snapshot.name}" in restored
    assert state(renv) == kept
    (model,) = json.loads(docchat(renv, "models", "list", "--json"))
    assert Path(model["path"]).is_file()
    if catalog:  # not in the snapshot: installed again, under the new data directory
        assert f"catalog model installed again: {CATALOG_MODEL}" in restored
        assert Path(model["path"]).is_relative_to(fresh)
        # ...and the restored deployment answers from the command line too.
        answer = docchat(renv, "ask", QUESTIONS[0])
        assert "Sources" in answer

    # 5. The same questions, the same citations; the conversation is there.
    with (
        docchat_serve(renv, tmp_path / "serve-restored.log") as served,
        httpx.Client(base_url=served.base, timeout=300) as client,
    ):
        after = {q: citations(ask(client, q)) for q in QUESTIONS}
        again = client.get(f"/api/conversations/{first['conversation_id']}").json()
    assert after == before
    assert again == conversation
    audit = docchat(renv, "audit", "list", "--action", "backup", "--json")
    assert [e["action"] for e in json.loads(audit)] == ["backup.restore"]

    # 6. A damaged snapshot and one from a newer schema are refused, with their reasons.
    damaged = shutil.copytree(snapshot, tmp_path / "damaged" / snapshot.name)
    victim = damaged / str(json.loads((damaged / "manifest.json").read_text())["database"]["file"])
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    newer = shutil.copytree(snapshot, tmp_path / "newer" / snapshot.name)
    manifest = json.loads((newer / "manifest.json").read_text())
    manifest["schema_revision"] = "9999"
    del manifest["signature"]  # signed again, as a newer docchat with the key would
    manifest["signature"] = signing.sign(manifest, SIGNING_KEY.encode())
    (newer / "manifest.json").write_text(json.dumps(manifest))
    empty = environment(tmp_path / "empty" / "data", target)
    refused = docchat(empty, "backup", "restore", str(damaged), ok=False)
    assert "restore refused" in refused
    assert f"{victim.relative_to(damaged)} does not match its sha256" in refused
    refused = docchat(empty, "backup", "verify", str(newer), ok=False)
    assert "schema revision '9999', newer than this docchat knows" in refused


def test_backup_drill_on_sqlite_and_embedded_chroma(tmp_path: Path, models: Models) -> None:
    drill(tmp_path, models, {}, {}, catalog=True)


def test_backup_drill_on_postgresql_and_a_chroma_server(
    tmp_path: Path, models: Models, postgres: PostgresServer
) -> None:
    with ExitStack() as servers:
        (tmp_path / "chroma-a").mkdir()
        (tmp_path / "chroma-b").mkdir()
        old = servers.enter_context(chroma_running(tmp_path / "chroma-a"))
        new = servers.enter_context(chroma_running(tmp_path / "chroma-b"))
        drill(
            tmp_path,
            models,
            {"DOCCHAT_VECTORS__URL": old.url, "DOCCHAT_DATABASE__URL": postgres.new_database()},
            {"DOCCHAT_VECTORS__URL": new.url, "DOCCHAT_DATABASE__URL": postgres.new_database()},
        )
