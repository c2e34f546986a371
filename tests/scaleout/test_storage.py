"""Ingest and chat on the scale-out stores: a real `chroma run` server and PostgreSQL.

The same code as the embedded path, pointed elsewhere by settings only; the incremental
ingest must leave exactly what the embedded stores hold after the same runs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.components import Components, build_components, open_database
from app.main import create_app
from app.settings import Settings
from app.store.models import IngestRun
from tests.conftest import CORPUS, Models, make_settings
from tests.ingest.test_pipeline import BAD, expected_chunks, run, stored_state
from tests.scaleout.conftest import scaleout_settings
from tests.servers import ChromaServer, PostgresServer

QUESTION = "What port does the widget server listen on by default?"


def test_incremental_ingest_matches_the_embedded_stores(
    tmp_path: Path, servers_settings: Settings, models: Models
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    first = run(servers_settings, models, corpus)
    assert (first.new, first.failed, first.status) == (5, len(BAD), "partial")
    db = open_database(servers_settings)
    with db.session() as session:
        stored = session.scalars(select(IngestRun)).one()
        assert (stored.status, stored.failed) == ("partial", len(BAD))
        assert {i.path for i in stored.findings if i.severity == "error"} == {
            f"corpus/{name}" for name in BAD
        }
        assert stored.finished_at is not None
        assert stored.finished_at.tzinfo is not None
    db.close()

    again = run(servers_settings, models, corpus)
    assert (again.new, again.changed, again.unchanged, again.chunks_written) == (0, 0, 5, 0)

    guide = corpus / "guide.md"
    guide.write_text(
        guide.read_text() + "\n\n## Uninstalling\n\nRun `widgetctl purge` to remove every widget.\n"
    )
    (corpus / "notes.txt").unlink()
    (corpus / "faq.md").write_text("# FAQ\n\nWidgets are blue unless painted otherwise.\n")
    third = run(servers_settings, models, corpus)
    assert (third.new, third.changed, third.unchanged, third.deleted) == (1, 1, 3, 1)
    assert third.chunks_written == expected_chunks(
        models, servers_settings, guide
    ) + expected_chunks(models, servers_settings, corpus / "faq.md")

    state = stored_state(servers_settings)
    assert {c[0] for c in state["vectors"]} == {  # type: ignore[attr-defined]
        f"corpus/{n}" for n in ("admin/backup.rst", "faq.md", "guide.md", "manual.pdf")
    } | {"corpus/reference/api.html"}
    # The final folder ingested from scratch into the embedded stores gives the same state.
    embedded = make_settings(tmp_path / "embedded")
    run(embedded, models, corpus)
    assert stored_state(embedded) == state


@pytest.fixture(scope="module")
def servers_components(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresServer,
    chroma_server: ChromaServer,
    models: Models,
) -> Iterator[Components]:
    """The fixture corpus ingested into the servers, and components over them."""
    root = tmp_path_factory.mktemp("servers-corpus")
    shutil.copytree(CORPUS, root / "corpus")
    settings = scaleout_settings(root / "data", postgres, chroma_server)
    run(settings, models, root / "corpus")
    components = build_components(settings, embedder=models.embedder, engine=models.engine)
    yield components
    components.close()


@pytest.fixture
def servers_client(servers_components: Components) -> Iterator[TestClient]:
    with TestClient(create_app(servers_components.settings, servers_components)) as client:
        yield client


def _sse_done(body: str) -> dict[str, object]:
    event = ""
    for line in body.splitlines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event == "done":
            return dict(json.loads(line[5:]))
    raise AssertionError(f"no done event in {body[-500:]!r}")


def test_chat_answers_with_sources_and_keeps_the_conversation(
    servers_client: TestClient, servers_components: Components, postgres: PostgresServer
) -> None:
    response = servers_client.post("/api/chat", json={"question": QUESTION, "stream": False})
    assert response.status_code == 200, response.text
    first = response.json()
    assert first["answered_from_docs"] is True
    assert first["citations"][0]["source"] == "corpus/guide.md"
    conversation_id = first["conversation_id"]

    # A follow-up, streamed, in the same conversation (its history comes from PostgreSQL).
    follow_up = servers_client.post(
        "/api/chat",
        json={"question": "Where is its configuration file?", "conversation_id": conversation_id},
    )
    assert follow_up.status_code == 200, follow_up.text
    done = _sse_done(follow_up.text)
    assert done["conversation_id"] == conversation_id

    shown = servers_client.get(f"/api/conversations/{conversation_id}")
    assert shown.status_code == 200
    messages = shown.json()["messages"]
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "complete"),
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert messages[1]["citations"] == first["citations"]
    assert messages[1]["content"] == first["answer"]

    # What a citation links to: the document's chunks, from PostgreSQL.
    document = servers_client.get(f"/api/documents/{first['citations'][0]['document_id']}")
    assert document.status_code == 200
    assert "7421" in json.dumps(document.json())

    # The rows themselves, read with a plain PostgreSQL connection.
    database = servers_components.settings.database_url.rsplit("/", 1)[1]
    with postgres.connect(database) as conn:
        rows = conn.execute(
            "SELECT role, seq, citations::text, created_at FROM messages "
            "WHERE conversation_id = %s ORDER BY seq",
            (conversation_id,),
        ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [
        ("user", 1),
        ("assistant", 2),
        ("user", 3),
        ("assistant", 4),
    ]
    assert "corpus/guide.md" in rows[1][2]
    assert all(r[3].tzinfo is not None for r in rows)


def test_health_admin_and_metrics_read_the_servers(servers_client: TestClient) -> None:
    assert servers_client.get("/readyz").status_code == 200
    runs = servers_client.get("/api/admin/ingest-runs")
    assert runs.status_code == 200
    latest = runs.json()[0]
    assert (latest["status"], latest["counts"]["new"], latest["counts"]["failed"]) == (
        "partial",
        5,
        len(BAD),
    )
    metrics = servers_client.get("/metrics").text
    assert 'docchat_ingest_runs_total{status="partial"} 1.0' in metrics
    assert "docchat_ingest_last_run_timestamp_seconds" in metrics


def test_a_nul_character_in_a_question_is_not_a_server_error(servers_client: TestClient) -> None:
    """PostgreSQL text cannot hold NUL (SQLite can): the question must still be answered."""
    response = servers_client.post(
        "/api/chat", json={"question": "What port\x00 does the widget server use?", "stream": False}
    )
    assert response.status_code == 200, response.text
    stored = servers_client.get(f"/api/conversations/{response.json()['conversation_id']}")
    assert stored.json()["messages"][0]["content"] == "What port does the widget server use?"


def test_pooled_connections_dropped_by_the_server_are_replaced(
    servers_settings: Settings, postgres: PostgresServer
) -> None:
    """Connections the server dropped (restart, idle timeout) are replaced, not used."""
    db = open_database(servers_settings)
    with db.session() as session:
        assert session.scalars(select(IngestRun)).all() == []
    database = servers_settings.database_url.rsplit("/", 1)[1]
    with postgres.connect() as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'docchat'",
            (database,),
        ).fetchone()
    assert killed is not None
    assert killed[0] >= 1
    with db.session() as session:
        assert session.scalars(select(IngestRun)).all() == []
    db.close()
