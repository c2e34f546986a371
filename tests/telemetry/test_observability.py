"""Metrics, structured logs, traces and the answer checks, on the real app."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from app.chat.passage import PASSAGE_INTRO
from app.chat.service import UNGROUNDED_ANSWER
from app.components import Components
from app.main import create_app
from app.rag.grounding import grounding_score
from app.security.redaction import Redactor
from app.settings import TelemetrySettings
from app.telemetry import logging as logs
from app.telemetry.reporter import Telemetry
from app.telemetry.tracing import make_tracer

QUESTION = "What port does the widget server listen on by default?"


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_follow_a_chat(client: TestClient) -> None:
    before = samples(client)
    response = client.post("/api/chat", json={"question": QUESTION, "stream": False})
    assert response.status_code == 200
    after = samples(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("docchat_http_requests_total", route="/api/chat", method="POST", status="200") == 1
    assert (
        grew("docchat_http_request_duration_seconds_count", route="/api/chat", method="POST") == 1
    )
    for stage in ("embed", "retrieve", "prompt", "generate", "check"):
        assert grew("docchat_chat_stage_duration_seconds_count", stage=stage) >= 1, stage
    assert grew("docchat_prompt_tokens_total") > 100
    assert grew("docchat_completion_tokens_total") >= 1
    assert grew("docchat_retrieval_top_score_count") == 1
    assert grew("docchat_answer_grounding_score_count") == 1
    verdicts = sum(grew("docchat_answers_total", verdict=v) for v in ("grounded", "ungrounded"))
    assert verdicts == 1
    assert value(after, "docchat_llm_waiting_requests") == 0
    assert value(after, "docchat_llm_running_generations") == 0
    info = [k for k in after if k[0] == "docchat_model_info"]
    assert dict(info[0][1])["model"] == "SmolLM2-135M-Instruct.Q4_1"
    # Ingest figures come from the database: the corpus run is there.
    assert value(after, "docchat_ingest_runs_total", status="partial") >= 1
    assert value(after, "docchat_ingest_files_total", outcome="failed") >= 4
    assert value(after, "docchat_ingest_chunks_total") > 0
    # Ids never become label values: one series per route template.
    client.get("/api/documents/abc")
    client.get("/api/documents/def")
    routes = {
        dict(k[1]).get("route") for k in samples(client) if k[0] == "docchat_http_requests_total"
    }
    assert "/api/documents/{document_id}" in routes
    assert not any(r and r.endswith(("abc", "def")) for r in routes)


def test_no_context_is_counted(client: TestClient) -> None:
    before = samples(client)
    client.post("/api/chat", json={"question": "Who won the 1966 World Cup?", "stream": False})
    after = samples(client)
    grown = value(after, "docchat_answers_total", verdict="no_context") - value(
        before, "docchat_answers_total", verdict="no_context"
    )
    assert grown == 1


def test_answers_carry_their_grounding(client: TestClient) -> None:
    body = client.post("/api/chat", json={"question": QUESTION, "stream": False}).json()
    assert isinstance(body["grounded"], bool)
    assert 0.0 <= body["grounding_score"] <= 1.0
    assert body["checks"]["retrieval_score"] == body["citations"][0]["score"]
    stored = client.get(f"/api/conversations/{body['conversation_id']}").json()
    assert stored["messages"][1]["checks"]["grounding_score"] == body["grounding_score"]


def test_grounding_score_separates_supported_from_invented(components: Components) -> None:
    hits = components.vectors.query(
        components.settings.vectors.collection, components.embedder.embed([QUESTION])[0], 3
    )
    supported, _ = grounding_score(
        "The widget server listens on port 7421 by default.", hits, components.embedder.embed
    )
    invented, _ = grounding_score(
        "Penguins migrate across Antarctica every winter to breed on the sea ice.",
        hits,
        components.embedder.embed,
    )
    assert supported >= 0.9
    assert invented <= 0.1


def test_an_answer_that_asks_the_question_back_is_not_supported(
    components: Components,
) -> None:
    hits = components.vectors.query(
        components.settings.vectors.collection, components.embedder.embed([QUESTION])[0], 3
    )
    embed = components.embedder.embed
    # The passages found for a question resemble it: asked back, it would pass as supported.
    assert grounding_score(QUESTION, hits, embed)[0] >= 0.9
    assert grounding_score(QUESTION, hits, embed, QUESTION)[0] == 0.0
    # Within an answer only that sentence counts as unsupported; a statement in the
    # question's own words is an answer.
    answer = "What port does the widget server listen on? It listens on port 7421 by default."
    assert 0.0 < grounding_score(answer, hits, embed, QUESTION)[0] < 1.0
    statement = "The widget server listens on port 7421 by default."
    assert grounding_score(statement, hits, embed, QUESTION)[0] >= 0.9


def test_ungrounded_answer_is_replaced_when_asked(components: Components) -> None:
    """With the threshold above any score, every answer is ungrounded: the policy shows.
    (model_copy does not validate, so the threshold may exceed the settings' bound.)"""
    rag = components.settings.rag.model_copy(
        update={"grounding_threshold": 1.01, "ungrounded_action": "replace"}
    )
    settings = components.settings.model_copy(update={"rag": rag})
    with TestClient(create_app(settings, components.using(settings=settings))) as client:
        body = client.post("/api/chat", json={"question": QUESTION, "stream": False}).json()
    assert body["grounded"] is False
    assert body["answer"] == UNGROUNDED_ANSWER
    assert body["citations"]  # the closest sources are still listed
    assert body["checks"]["replaced_by"] == "notice"


def test_ungrounded_answer_gives_way_to_the_closest_passage(components: Components) -> None:
    """ungrounded_action=passages: the top passage, word for word and cited, in place of
    an answer its sources do not support."""
    rag = components.settings.rag.model_copy(
        update={"grounding_threshold": 1.01, "ungrounded_action": "passages"}
    )
    settings = components.settings.model_copy(update={"rag": rag})
    with TestClient(create_app(settings, components.using(settings=settings))) as client:
        body = client.post("/api/chat", json={"question": QUESTION, "stream": False}).json()
        stored = client.get(f"/api/conversations/{body['conversation_id']}").json()
    assert body["grounded"] is False
    assert body["checks"]["replaced_by"] == "passage"
    assert body["answer"].startswith(PASSAGE_INTRO)
    assert "> " in body["answer"]
    assert "7421" in body["answer"]  # the guide's passage holds the port
    assert "grounding" in body["checks"]["flagged_by"]  # why: the support, not doubt
    assert f"from {body['citations'][0]['source']} [1]" in body["answer"]
    assert stored["messages"][1]["content"] == body["answer"]


@pytest.fixture
def traced(components: Components) -> Iterator[tuple[TestClient, InMemorySpanExporter, Telemetry]]:
    exporter = InMemorySpanExporter()
    tracer, provider = make_tracer(TelemetrySettings(), exporter)
    telemetry = replace(components.telemetry, tracer=tracer, provider=provider)
    with TestClient(
        create_app(components.settings, components.using(telemetry=telemetry))
    ) as client:
        yield client, exporter, telemetry


def test_trace_has_a_span_per_stage(
    traced: tuple[TestClient, InMemorySpanExporter, Telemetry],
) -> None:
    client, exporter, telemetry = traced
    response = client.post(
        "/api/chat", json={"question": QUESTION}, headers={"X-Request-ID": "trace-test-1"}
    )
    assert response.status_code == 200
    assert telemetry.provider is not None
    telemetry.provider.force_flush()
    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.name == "POST /api/chat"]
    assert len(roots) == 1
    root = roots[0]
    assert root.attributes["docchat.request_id"] == "trace-test-1"
    assert root.attributes["http.response.status_code"] == 200
    children = {s.name: s for s in spans if s.parent and s.parent.span_id == root.context.span_id}
    assert {"embed", "retrieve", "generate", "check"} <= set(children)
    assert all(s.context.trace_id == root.context.trace_id for s in children.values())
    assert children["generate"].attributes["docchat.completion_tokens"] >= 1


def test_logs_are_json_lines_with_the_request_id(client: TestClient, keys: dict[str, str]) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter(Redactor(["SUPERSECRETVALUE"])))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        ok = client.get("/healthz", headers={"X-Request-ID": "req-abc-123"})
        missing = client.get("/api/conversations/nope")
        answered = client.post("/api/chat", json={"question": QUESTION, "stream": False})
        logging.getLogger("docchat.test").warning("token is SUPERSECRETVALUE")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert ok.headers["x-request-id"] == "req-abc-123"
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    health = next(e for e in events if e.get("path") == "/healthz")
    assert health["request_id"] == "req-abc-123"
    assert health["status"] == 200
    assert health["duration_ms"] >= 0
    chat_line = next(e for e in events if e.get("path") == "/api/chat")
    failed = [e for e in events if e.get("path") == "/api/conversations/nope"]
    assert len(failed) == 1  # an error is logged once
    assert failed[0]["level"] == "WARNING"
    assert failed[0]["error"]["type"] == "not_found"
    assert failed[0]["request_id"] == missing.headers["x-request-id"]
    assert missing.json()["error"]["request_id"] == missing.headers["x-request-id"]
    assert any(e["message"] == "token is [REDACTED]" for e in events)
    assert chat_line["conversation_id"] == answered.json()["conversation_id"]


def test_a_malformed_request_id_is_replaced(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert response.headers["x-request-id"] != "bad id\twith spaces"
    assert len(response.headers["x-request-id"]) == 32


def test_metrics_can_require_an_admin_key(components: Components, keys: dict[str, str]) -> None:
    from tests.conftest import with_auth

    settings = with_auth(components.settings)
    open_app = create_app(settings, components)
    telemetry = settings.telemetry.model_copy(update={"metrics_require_key": True})
    closed_app = create_app(settings.model_copy(update={"telemetry": telemetry}), components)
    with TestClient(open_app) as client:
        assert client.get("/metrics").status_code == 200  # scrapers need no key by default
    with TestClient(closed_app) as client:
        assert client.get("/metrics").status_code == 401
        chat = {"Authorization": f"Bearer {keys['chat']}"}
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        assert client.get("/metrics", headers=chat).status_code == 403
        assert client.get("/metrics", headers=admin).status_code == 200
