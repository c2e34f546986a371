"""The official openai client against a live server on loopback, unchanged."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from app.api.openai import MODEL_ALIAS
from app.security.redaction import Redactor
from app.telemetry import logging as logs
from tests.telemetry.test_log_safety import captured

QUESTION = "Which REST endpoint creates a widget?"


@pytest.fixture
def client(live_server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server}/v1", api_key="not-checked-yet", max_retries=0)


def test_models_are_listed(client: openai.OpenAI) -> None:
    """The model, its alias, and the default collection by name (the server registered
    it at start-up, readable by everyone)."""
    ids = [m.id for m in client.models.list()]
    # Then every other collection the session's tests registered (auth off: all).
    assert ids[:3] == ["SmolLM2-135M-Instruct.Q4_1", MODEL_ALIAS, f"{MODEL_ALIAS}/docs"]
    assert all(i.startswith(f"{MODEL_ALIAS}/") for i in ids[3:])


def test_completion_answers_with_sources(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model=MODEL_ALIAS,
        messages=[
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": QUESTION},
        ],
        max_tokens=48,
    )
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert "/v2/widgets" in choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert response.usage.prompt_tokens > 0
    assert response.usage.completion_tokens > 0
    sources = response.model_extra["sources"]
    assert sources[0]["source"] == "corpus/reference/api.html"


def test_streaming_completion(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="SmolLM2-135M-Instruct.Q4_1",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=48,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, sources, finish, usage = [], None, None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        if not chunk.choices:
            continue
        pieces.append(chunk.choices[0].delta.content or "")
        finish = chunk.choices[0].finish_reason or finish
        sources = (chunk.model_extra or {}).get("sources", sources)
    text = "".join(pieces)
    assert "/v2/widgets" in text
    assert finish in ("stop", "length")
    assert sources
    assert sources[0]["source"] == "corpus/reference/api.html"
    assert usage is not None
    assert usage.completion_tokens > 0


def test_unknown_model_is_an_openai_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": QUESTION}]
        )
    assert "does not exist" in caught.value.message


def test_request_without_user_message_is_rejected(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=MODEL_ALIAS, messages=[{"role": "system", "content": "hi"}]
        )


def test_conversation_history_from_the_client(live_server: str) -> None:
    body = {
        "model": MODEL_ALIAS,
        "messages": [
            {"role": "user", "content": "When do the nightly backups run?"},
            {"role": "assistant", "content": "They run at 02:30."},
            {"role": "user", "content": "How long are they kept?"},
        ],
        "max_tokens": 40,
    }
    response = httpx.post(f"{live_server}/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == 200
    assert response.json()["sources"][0]["source"] == "corpus/admin/backup.rst"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The structured log lines the server (in this process) writes meanwhile."""
    with captured(logs.JsonFormatter(Redactor([]))) as stream:
        yield stream


@pytest.mark.parametrize("size", [900_000, 200])
def test_a_huge_model_name_is_not_echoed_or_logged_whole(
    live_server: str, json_log: io.StringIO, size: int
) -> None:
    """Issue 22: a 900 KB model name came back whole in the 404 body and in the log
    line (900 KB each). Now the schema refuses it (422) and a shorter unknown name is
    quoted cut to 64 characters with a marker."""
    name = "m" * size
    body = {"model": name, "messages": [{"role": "user", "content": QUESTION}]}
    response = httpx.post(f"{live_server}/v1/chat/completions", json=body, timeout=120)
    assert 400 <= response.status_code < 500
    assert len(response.content) < 1000, response.content[:300]
    assert "m" * 65 not in response.text
    if size == 200:
        assert response.status_code == 404
        assert "more characters" in response.json()["error"]["message"]
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    logged = [e for e in lines if e.get("path") == "/v1/chat/completions"]
    assert logged, lines
    assert all(len(json.dumps(e)) < 2000 for e in logged)
