"""POST /api/chat and the read views, against the real models and stores."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.components import Components
from app.rag.prompt import NO_CONTEXT_ANSWER
from tests.sse import parse_sse

PORT_QUESTION = "What port does the widget server listen on by default?"


def stream_chat(client: TestClient, body: dict[str, Any]) -> list[tuple[str, Any]]:
    with client.stream("POST", "/api/chat", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_sse(response.iter_lines())


def test_streamed_answer_cites_the_source(client: TestClient) -> None:
    events = stream_chat(client, {"question": PORT_QUESTION})
    names = [name for name, _ in events]
    assert names[0] == "start"
    assert names[-1] == "done"
    assert names.count("token") >= 2
    done = events[-1][1]
    streamed = "".join(data["text"] for name, data in events if name == "token")
    assert done["answer"] == streamed.strip()
    assert "7421" in done["answer"]
    assert done["answered_from_docs"] is True
    top = done["citations"][0]
    assert top["source"] == "corpus/guide.md"
    assert top["title"] == "Getting started"
    assert top["section"]
    assert 0.3 <= top["score"] <= 1.0
    assert top["url"] == f"/sources/{top['document_id']}#chunk-{top['chunk']}"
    assert done["conversation_id"] == events[0][1]["conversation_id"]
    assert done["message_id"] == events[0][1]["message_id"]


def test_json_answer_has_the_same_fields(client: TestClient) -> None:
    response = client.post("/api/chat", json={"question": PORT_QUESTION, "stream": False})
    assert response.status_code == 200
    body = response.json()
    assert {"conversation_id", "message_id", "answer", "citations", "answered_from_docs"} <= set(
        body
    )
    assert "7421" in body["answer"]
    assert body["citations"][0]["source"] == "corpus/guide.md"
    assert body["usage"]["prompt_tokens"] > 0
    # Each sentence of an answer shown as written, with its passage sentence; none for
    # an answer the docs' own passage replaced.
    checks = body["checks"]
    if checks.get("replaced_by"):
        assert "support" not in checks
    else:
        assert checks["support"]
        keys = {"sentence", "source", "passage_sentence", "score", "supported"}
        assert all(set(item) == keys for item in checks["support"])
        assert any(item["source"] == "corpus/guide.md" for item in checks["support"])


def test_follow_up_uses_stored_history(client: TestClient) -> None:
    first = client.post(
        "/api/chat",
        json={"question": "How are backups made and when do they run?", "stream": False},
    ).json()
    assert any(c["source"] == "corpus/admin/backup.rst" for c in first["citations"])
    # Means little alone; the stored first question brings back the backup page.
    follow = client.post(
        "/api/chat",
        json={
            "question": "For how many days are they kept?",
            "conversation_id": first["conversation_id"],
            "stream": False,
        },
    ).json()
    assert follow["conversation_id"] == first["conversation_id"]
    assert any(c["source"] == "corpus/admin/backup.rst" for c in follow["citations"])
    stored = client.get(f"/api/conversations/{first['conversation_id']}").json()
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant", "user", "assistant"]
    assert stored["messages"][3]["content"] == follow["answer"]
    assert stored["messages"][3]["status"] == "complete"
    assert stored["messages"][1]["citations"] == first["citations"]


def test_unrelated_question_is_not_answered_from_thin_air(client: TestClient) -> None:
    events = stream_chat(client, {"question": "What is the boiling point of tungsten?"})
    done = events[-1][1]
    assert done["answered_from_docs"] is False
    assert done["answer"] == NO_CONTEXT_ANSWER
    assert done["citations"] == []


def test_unknown_conversation_is_404(client: TestClient) -> None:
    response = client.post("/api/chat", json={"question": "hello", "conversation_id": "nope"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    assert client.get("/api/conversations/nope").status_code == 404


def test_malformed_requests_get_clear_errors(client: TestClient) -> None:
    cases = [
        ({}, "question"),
        ({"question": ""}, "question"),
        ({"question": 42}, "question"),
        ({"question": "ok", "stream": "maybe"}, "stream"),
    ]
    for body, field in cases:
        response = client.post("/api/chat", json=body)
        assert response.status_code == 422, body
        assert field in response.json()["error"]["message"]
    response = client.post(
        "/api/chat", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert client.post("/api/chat", json={"question": "   "}).status_code == 422


def test_overlong_question_is_refused(client: TestClient) -> None:
    limit = client.app.state.components.settings.rag.max_question_chars  # type: ignore[attr-defined]
    response = client.post("/api/chat", json={"question": "x " * limit})
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "question_too_long"


def test_cited_document_is_served(client: TestClient) -> None:
    done = client.post("/api/chat", json={"question": PORT_QUESTION, "stream": False}).json()
    citation = done["citations"][0]
    document = client.get(f"/api/documents/{citation['document_id']}").json()
    assert document["source"] == "corpus/guide.md"
    # A citation opens the document where its passage starts; the passage (that chunk
    # and the neighbours assembly widened it to) holds the answer.
    passage = [c for c in document["chunks"] if 0 <= c["ord"] - citation["chunk"] <= 2]
    assert passage[0]["ord"] == citation["chunk"]
    assert any("7421" in c["text"] for c in passage)
    assert client.get("/api/documents/unknown").status_code == 404
    page = client.get(citation["url"].split("#")[0])
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "database": "ok",
        "vectors": "ok",
    }


def test_chat_page_is_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "/static/chat.js" in page.text
    assert client.get("/static/chat.js").status_code == 200


def test_readiness_fails_when_the_database_is_unreachable(components, tmp_path) -> None:  # type: ignore[no-untyped-def]

    from app.main import create_app
    from app.store.db import Database

    # A directory where the SQLite file should be: every connection fails.
    (tmp_path / "db.sqlite").mkdir()
    broken = components.using(db=Database(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    with TestClient(create_app(components.settings, broken)) as client:
        response = client.get("/readyz")
        assert client.get("/healthz").status_code == 200
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unavailable")
    assert response.json()["checks"]["vectors"] == "ok"


def test_an_answer_cut_at_its_length_limit_says_so(
    client: TestClient, components: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    """finish_reason tells a complete answer from one cut at its length limit (the page
    marks the cut one), in the JSON answer and the stream's done event alike."""
    body = client.post("/api/chat", json={"question": PORT_QUESTION, "stream": False}).json()
    complete = body["usage"]["completion_tokens"] < components.chat.llm.answer_tokens
    if complete:
        assert body["finish_reason"] in ("stop", "repetition")
    else:
        assert body["finish_reason"] == "length"
    chat = components.chat
    monkeypatch.setattr(chat, "llm", chat.llm.model_copy(update={"max_tokens": 4}))
    body = client.post("/api/chat", json={"question": PORT_QUESTION, "stream": False}).json()
    assert body["usage"]["completion_tokens"] == 4
    assert body["finish_reason"] == "length"
    done = stream_chat(client, {"question": PORT_QUESTION})[-1][1]
    assert done["finish_reason"] == "length"
    # Kept with the stored answer, so a reloaded conversation can mark it too; the
    # question has none.
    stored = client.get(f"/api/conversations/{done['conversation_id']}").json()["messages"]
    assert [(m["role"], m["finish_reason"]) for m in stored] == [
        ("user", None),
        ("assistant", "length"),
    ]


def test_a_request_without_a_limit_gets_the_shorter_default(
    client: TestClient, components: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer whose request names no limit stops at llm.answer_tokens; an API call
    may ask for more, up to the llm.max_tokens ceiling (the widget question's answer
    runs past 12 tokens with the test model)."""
    chat = components.chat
    monkeypatch.setattr(chat, "llm", chat.llm.model_copy(update={"answer_tokens": 6}))
    body = client.post("/api/chat", json={"question": PORT_QUESTION, "stream": False}).json()
    assert (body["usage"]["completion_tokens"], body["finish_reason"]) == (6, "length")
    monkeypatch.setattr(chat, "llm", chat.llm.model_copy(update={"max_tokens": 12}))
    messages = [{"role": "user", "content": PORT_QUESTION}]
    for asked, written in ((None, 6), (9, 9), (100_000, 12)):
        request: dict[str, Any] = {"model": "docchat", "messages": messages}
        if asked is not None:
            request["max_tokens"] = asked
        reply = client.post("/v1/chat/completions", json=request).json()
        assert reply["usage"]["completion_tokens"] == written, asked
        assert reply["choices"][0]["finish_reason"] == "length"
