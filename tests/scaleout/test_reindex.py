"""`docchat reindex`: a real server keeps answering through a reindex to another
embedding model and follows the swap; a reindex killed with SIGKILL continues when run
again; rollback serves the previous index (caught up with what was ingested since)
until it is dropped. Real processes, real models: the live reindex on the Chroma server
with PostgreSQL, the killed one on both storage pairs, the rollback on the embedded one."""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.components import open_database, open_vectors
from app.llm.provision import default_embedding_model
from app.rag.retrieval import Retriever
from ingest.reindex import stored_chunks
from tests.conftest import CORPUS, Models, docchat_serve, make_settings
from tests.scaleout.test_serve_and_ingest import (
    BACKUP_QUESTION,
    Asker,
    ask,
    cli,
    docchat_env,
    sources,
)
from tests.servers import ChromaServer, PostgresServer

pytestmark = pytest.mark.slow


def corpus(root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / "guide.md", docs)
    shutil.copy(CORPUS / "notes.txt", docs)
    shutil.copytree(CORPUS / "admin", docs / "admin")
    shutil.copytree(CORPUS / "reference", docs / "reference")
    return docs


def status(env: dict[str, str], collection: str = "docs") -> dict[str, Any]:
    done = cli(env, "reindex", "--status", "--collection", collection)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_reindex_to_another_model_while_the_server_answers_on_chroma_server_and_postgresql(
    tmp_path: Path, postgres: PostgresServer, chroma_server: ChromaServer
) -> None:
    env = docchat_env(
        tmp_path / "data",
        vectors__url=chroma_server.url,
        vectors__collection="reindexed",
        database__url=postgres.new_database(),
        # fp32 only (not auto, which serves either variant itself): int8 is then a
        # model the server must load to follow the swap.
        embedding__backend="torch",
    )
    assert cli(env, "ingest", str(corpus(tmp_path))).returncode == 0
    with docchat_serve(env, tmp_path / "server.log") as served:
        base = served.base
        assert "docs/admin/backup.rst" in sources(ask(base, BACKUP_QUESTION))
        with Asker(base) as asker:
            while len(asker.done) < 1:
                time.sleep(0.1)
            started = time.monotonic()
            # int8: another embedding model, so the server must load it to follow.
            done = cli(env, "reindex", "--collection", "reindexed", "--backend", "onnx-int8")
            ended = time.monotonic()
            assert done.returncode == 0, done.stderr
            while not any(a.started > ended for a in asker.done):
                time.sleep(0.1)  # answers after the swap, too
        assert "Traceback" not in done.stderr
        during = [a for a in asker.done if a.started < ended and a.ended > started]
        assert during, "no answer overlapped the reindex"
        failed = [(a.status, a.body[:300]) for a in asker.done if a.status != 200]
        assert failed == []
        now = status(env, "reindexed")
        assert now["target"]["name"] == "reindexed--g1"
        assert "int8" in now["target"]["model"]
        assert now["previous"]["name"] == "reindexed"
        after = ask(base, BACKUP_QUESTION)
        assert "docs/admin/backup.rst" in sources(after)

        # Roll back while it answers: the fp32 index serves again, no restart.
        back = cli(env, "reindex", "--collection", "reindexed", "--rollback")
        assert back.returncode == 0, back.stderr
        assert status(env, "reindexed")["target"]["name"] == "reindexed"
        assert "docs/admin/backup.rst" in sources(ask(base, BACKUP_QUESTION))
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    assert "is now served by" in log  # it loaded the int8 model to follow the swap


def synthetic_docs(root: Path, files: int = 14) -> Path:
    """Distinct pages (no duplicates for the quality checks), a few chunks each."""
    rng = random.Random(7)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
        for _ in range(3000)
    ]
    docs = root / "many"
    docs.mkdir()
    for i in range(files):
        sections = []
        for s in range(5):
            text = " ".join(rng.choice(words) for _ in range(170))
            sections.append(f"## Part {s} of page {i}\n\n{text}.\n")
        (docs / f"page{i:02}.md").write_text(f"# Page {i}\n\n" + "\n".join(sections))
    return docs


@dataclass
class Pair:
    """One storage pair: the settings of the docchat processes and of the test's own
    readers, and the collection (its own on the shared Chroma server)."""

    env: dict[str, str]
    overrides: dict[str, Any]
    collection: str


@pytest.fixture(params=["embedded", "servers"])
def pair(request: pytest.FixtureRequest) -> Pair:
    if request.param == "embedded":
        return Pair({}, {}, "docs")
    postgres: PostgresServer = request.getfixturevalue("postgres")
    chroma: ChromaServer = request.getfixturevalue("chroma_server")
    collection, url = f"killed-{uuid.uuid4().hex[:8]}", postgres.new_database()
    return Pair(
        {"vectors__url": chroma.url, "vectors__collection": collection, "database__url": url},
        {"vectors": {"url": chroma.url, "collection": collection}, "database": {"url": url}},
        collection,
    )


def test_a_reindex_killed_midway_continues_and_ends_complete(
    tmp_path: Path, models: Models, pair: Pair
) -> None:
    """On both storage pairs: the embedded Chroma with SQLite, and a Chroma server with
    PostgreSQL (before, only the first, though the module said both)."""
    data = tmp_path / "data"
    env = docchat_env(data, **pair.env)
    name = pair.collection
    assert cli(env, "ingest", str(synthetic_docs(tmp_path))).returncode == 0
    settings = make_settings(data, **pair.overrides)
    db = open_database(settings)
    total = len(stored_chunks(db, name))
    db.close()
    assert total >= 60

    log = tmp_path / "reindex.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "reindex", "--backend", "onnx", "--batch", "6"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 240
    while True:
        found = [int(n) for n in re.findall(r"(\d+)/\d+ chunks embedded", log.read_text())]
        if found and max(found) >= 12:
            break
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the reindex did not get going"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = max(int(n) for n in re.findall(r"(\d+)/\d+ chunks embedded", log.read_text()))
    assert killed_at < total, "the reindex ended before the kill"

    midway = status(env, name)
    assert midway["target"]["name"] == name  # still served by the old index
    assert midway["target"]["chunks"] == total
    assert midway["building"]["name"] == f"{name}--g1"
    assert midway["building"]["state"] == "building"

    again = cli(env, "reindex", "--backend", "onnx")
    assert again.returncode == 0, again.stderr
    assert "(resumed)" in again.stdout
    embedded = int(re.search(r"(\d+) embedded", again.stdout).group(1))  # type: ignore[union-attr]
    assert embedded <= total - killed_at  # what was in the shadow was not redone
    final = status(env, name)
    assert final["building"] is None
    assert final["target"]["name"] == f"{name}--g1"
    assert final["target"]["chunks"] == total == final["stored_chunks"]

    # Complete: every stored chunk's vector is there, and retrieval finds the pages.
    vectors = open_vectors(settings, writer=False)
    db = open_database(settings)
    try:
        assert vectors.ids(name) == set(stored_chunks(db, name))
        page = (tmp_path / "many" / "page03.md").read_text().split("\n")[4][:300]
        hits = Retriever(models.embedder, vectors, name, top_k=3, min_score=0).search_sync(page)
    finally:
        vectors.close()
        db.close()
    assert hits[0].metadata["source"] == "many/page03.md"


def test_rollback_catches_up_and_lasts_until_the_previous_index_is_dropped(
    tmp_path: Path, models: Models
) -> None:
    data = tmp_path / "data"
    env = docchat_env(data, embedding__backend="torch")  # configured: fp32 only
    docs = corpus(tmp_path)
    (docs / "notes.txt").unlink()
    assert cli(env, "ingest", str(docs)).returncode == 0
    assert cli(env, "reindex", "--backend", "onnx-int8").returncode == 0

    # Ingested after the swap: only into the int8 index, with the int8 model.
    shutil.copy(CORPUS / "notes.txt", docs)
    refused = cli(env, "ingest", str(docs))  # the configured model is no longer it
    assert refused.returncode == 1
    assert "int8" in refused.stderr
    assert "fp32" in refused.stderr
    int8_env = {**env, "DOCCHAT_EMBEDDING__BACKEND": "onnx-int8"}
    assert cli(int8_env, "ingest", str(docs)).returncode == 0

    back = cli(env, "reindex", "--rollback")
    assert back.returncode == 0, back.stderr
    assert status(env)["target"]["name"] == "docs"
    settings = make_settings(data)
    vectors = open_vectors(settings, writer=False)
    db = open_database(settings)
    try:
        # The fp32 index got the chunks ingested meanwhile, embedded by its own model.
        assert vectors.ids("docs") == set(stored_chunks(db, "docs"))
        record = vectors.target("docs").record
        assert record is not None
        assert record.model.space == models.embedder.identity.space
        assert record.model.path == str(default_embedding_model().resolve())
        text = (CORPUS / "notes.txt").read_text()[:200]
        hits = Retriever(models.embedder, vectors, "docs", top_k=3, min_score=0).search_sync(text)
    finally:
        vectors.close()
        db.close()
    assert hits[0].metadata["source"] == "docs/notes.txt"

    dropped = cli(env, "reindex", "--drop-previous")
    assert dropped.returncode == 0, dropped.stderr
    assert "docs--g1" in dropped.stdout
    assert status(env)["previous"] is None
    again = cli(env, "reindex", "--rollback")
    assert again.returncode == 1
    assert "no previous index" in again.stderr
