"""The remote backend against a real `python -m llama_cpp.server` on loopback, serving
the same SmolLM2 file with an API key: answers with sources through docchat's own API
and its OpenAI endpoint, the queue bound, disconnects, deadlines, and clear errors (no
key leaked) when the key is wrong or the server is gone."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from app.api.openai import MODEL_ALIAS
from app.components import Components, build_components, load_engine
from app.llm.base import EngineUnavailable
from app.llm.provision import small_chat_model
from app.llm.remote import RemoteEngine
from app.main import create_app
from app.security.secrets import known_secrets
from app.settings import LLMSettings, Settings, load_settings
from tests.conftest import Models, free_port, serve_in_thread

QUESTION = "Which REST endpoint creates a widget?"
# An answer that runs far past a second: a short one can end inside the deadline (with
# the canary pinned, greedy-seeded sampling gives QUESTION a 13-token answer every time).
LONG_QUESTION = (
    "Write a long, detailed essay on every REST endpoint of the widget server, with "
    "many examples of requests and responses for each."
)
REMOTE_MODEL = "smollm2-remote"
# A wait for something that must happen is bounded only against a hang; what the tests
# assert is an order or an event, not a time.
HANG_GUARD_S = 120
pytestmark = pytest.mark.slow


@dataclass
class Upstream:
    """A running llama_cpp.server and what it takes to call it."""

    url: str  # the OpenAI base URL, .../v1
    key: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)


def start_upstream(folder: Path) -> Upstream:
    """llama-cpp-python's own server on a free port, with a fresh API key.

    `--interrupt_requests False`: by default it cuts off a running stream as soon as a
    second request arrives (FACTS.md); off, it serves them in turn.
    """
    port, key = free_port(), "sk-upstream-" + secrets.token_hex(16)
    log = folder / f"llama-server-{port}.log"
    command = [
        sys.executable,
        "-m",
        "app.llm.llama_server",  # llama_cpp.server with the CPU kernels loaded
        "--model",
        str(small_chat_model()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api_key",
        key,
        "--n_ctx",
        "4096",
        "--n_threads",
        "2",
        "--interrupt_requests",
        "False",
    ]
    with log.open("wb") as out:
        # Unbuffered: the server print()s the disconnect line the tests wait for, and a
        # block-buffered stdout (any environment without PYTHONUNBUFFERED) would hold it.
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    upstream = Upstream(f"http://127.0.0.1:{port}/v1", key, process, log)
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, log.read_text()
        try:
            headers = {"Authorization": f"Bearer {key}"}
            if httpx.get(f"{upstream.url}/models", headers=headers, timeout=2).is_success:
                return upstream
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            upstream.stop()
            raise RuntimeError("llama_cpp.server did not start: " + log.read_text()[-2000:])
        time.sleep(0.3)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    server = start_upstream(tmp_path_factory.mktemp("upstream"))
    yield server
    server.stop()


def remote_settings(settings: Settings, upstream: Upstream, **llm: object) -> Settings:
    """The corpus settings with generation sent to `upstream`."""
    values = {
        **settings.llm.model_dump(),
        "backend": "remote",
        "remote_url": upstream.url,
        "remote_model": REMOTE_MODEL,
        "remote_api_key": upstream.key,
        **llm,
    }
    return settings.model_copy(update={"llm": LLMSettings(**values)})  # type: ignore[arg-type]


def remote_components(components: Components, settings: Settings) -> Components:
    """The session's stores and embedder, with the engine and guards these settings
    choose (the guards then know the remote key as a secret)."""
    return build_components(
        settings, db=components.db, vectors=components.vectors, embedder=components.embedder
    )


@pytest.fixture(scope="module")
def remote(components: Components, upstream: Upstream) -> Iterator[Components]:
    built = remote_components(components, remote_settings(components.settings, upstream))
    yield built
    built.engine.close()


def sse_events(text: str) -> list[tuple[str, str]]:
    events = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], lines.get("data", "")))
    return events


# --- settings and wiring (no server needed) ---


def test_remote_backend_needs_a_url_and_a_model() -> None:
    with pytest.raises(ValueError, match=r"remote_url and llm\.remote_model"):
        LLMSettings(backend="remote", remote_model="m")
    with pytest.raises(ValueError, match="must not hold credentials"):
        LLMSettings(backend="remote", remote_url="http://u:p@llm:8080/v1", remote_model="m")
    with pytest.raises(ValueError, match="http"):
        LLMSettings(backend="remote", remote_url="llm:8080/v1", remote_model="m")
    assert LLMSettings(remote_model="ignored").backend == "local"


def test_remote_key_comes_from_the_secrets_file_and_counts_as_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "llm__remote_api_key").write_text("sk-from-the-file-0123456789")
    monkeypatch.setenv("DOCCHAT_SECRETS_DIR", str(secrets_dir))
    monkeypatch.setenv("DOCCHAT_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("DOCCHAT_LLM__BACKEND", "remote")
    monkeypatch.setenv("DOCCHAT_LLM__REMOTE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("DOCCHAT_LLM__REMOTE_MODEL", "m")
    settings = load_settings(data_dir=tmp_path / "data")
    assert settings.llm.remote_api_key is not None
    assert settings.llm.remote_api_key.get_secret_value() == "sk-from-the-file-0123456789"
    assert "sk-from-the-file" not in repr(settings)
    assert "sk-from-the-file-0123456789" in known_secrets(settings)
    # The environment wins over the file, as for every setting.
    monkeypatch.setenv("DOCCHAT_LLM__REMOTE_API_KEY", "sk-from-the-environment-98765")
    assert "sk-from-the-environment-98765" in known_secrets(load_settings(data_dir=tmp_path))


def test_remote_backend_loads_no_local_model(corpus_settings: Settings) -> None:
    settings = corpus_settings.model_copy(
        update={
            "llm": LLMSettings(
                backend="remote",
                remote_url="http://127.0.0.1:9/v1",
                remote_model="m",
                model_path=Path("/nonexistent/model.gguf"),  # would fail if it were loaded
            )
        }
    )
    engine = load_engine(settings)
    assert isinstance(engine, RemoteEngine)
    assert engine.model_id == "m"
    engine.close()


# --- against the real server ---


def test_chat_answers_with_sources_through_the_remote_model(remote: Components) -> None:
    assert isinstance(remote.engine, RemoteEngine)
    with TestClient(create_app(remote.settings, remote)) as client:
        reply = client.post("/api/chat", json={"question": QUESTION, "stream": False})
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["answered_from_docs"] is True
        assert body["citations"][0]["source"] == "corpus/reference/api.html"
        assert body["answer"].strip()
        assert body["usage"]["prompt_tokens"] > 100
        assert body["usage"]["completion_tokens"] > 0

        streamed = client.post("/api/chat", json={"question": QUESTION})
        events = sse_events(streamed.text)
        kinds = [kind for kind, _ in events]
        assert kinds[0] == "start"
        assert "token" in kinds
        assert kinds[-1] == "done", events[-1]

        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["model_server"] == "ok"
        assert ready.json()["checks"]["model"] == REMOTE_MODEL
        metrics = client.get("/metrics").text
        assert "docchat_llm_running_generations 0.0" in metrics


def test_openai_endpoint_on_top_of_the_remote_model(remote: Components) -> None:
    for base in serve_in_thread(create_app(remote.settings, remote)):
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
        listed = [m.id for m in client.models.list()]
        assert listed[:3] == [REMOTE_MODEL, MODEL_ALIAS, f"{MODEL_ALIAS}/docs"]
        response = client.chat.completions.create(
            model=MODEL_ALIAS, messages=[{"role": "user", "content": QUESTION}], max_tokens=48
        )
        assert response.choices[0].message.content
        assert response.usage is not None
        assert response.usage.completion_tokens > 0
        assert response.model_extra is not None
        assert response.model_extra["sources"][0]["source"] == "corpus/reference/api.html"
        stream = client.chat.completions.create(
            model=REMOTE_MODEL,
            messages=[{"role": "user", "content": QUESTION}],
            max_tokens=24,
            stream=True,
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text.strip()


def test_prompt_count_is_never_below_the_real_one(remote: Components, models: Models) -> None:
    """The remote count (server tokenizer plus a template allowance) against the exact
    count of the same model's template, applied locally."""
    chat = remote.chat
    hits = asyncio.run(chat.retriever.relevant(QUESTION, None))
    from app.rag.prompt import build_messages

    messages = build_messages(chat.system, QUESTION, hits, [], "")
    exact = len(models.engine.format(messages).tokens)
    prompt = remote.engine.format(messages)
    remote.engine.check_fits(prompt, 1)
    assert prompt.count is not None
    assert exact <= prompt.count <= exact + 40, (exact, prompt.count)
    # Without the server's tokenizer (it has none, or it is busy generating): an
    # estimate, higher still. Forced here, since this server always offers one.
    engine = RemoteEngine(remote.settings.llm)
    engine._tokenizer_missing = True
    estimated = engine.count_tokens(engine.format(messages))
    engine.close()
    assert exact <= estimated <= exact * 1.6, (exact, estimated)


def test_a_wrong_key_is_a_clear_error_and_never_leaks(
    components: Components, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "sk-wrong-" + secrets.token_hex(16)
    settings = remote_settings(components.settings, upstream, remote_api_key=wrong)
    built = remote_components(components, settings)
    caplog.set_level(logging.DEBUG)
    try:
        with TestClient(create_app(settings, built)) as client:
            replies = [
                client.post("/api/chat", json={"question": QUESTION, "stream": False}),
                client.post("/api/chat", json={"question": QUESTION}),
                client.post(
                    "/v1/chat/completions",
                    json={
                        "model": MODEL_ALIAS,
                        "messages": [{"role": "user", "content": QUESTION}],
                    },
                ),
            ]
            ready = client.get("/readyz")
        for reply in replies:
            assert reply.status_code == 502, reply.text
            assert reply.json()["error"]["type"] == "model_server_auth"
            assert "API key" in reply.json()["error"]["message"]
        assert ready.status_code == 503
        assert "refused docchat's API key" in ready.json()["checks"]["model_server"]
        # Past the token count too: the streamed request itself is refused.
        prompt = built.engine.format([{"role": "user", "content": "hi"}])
        prompt.count = 20

        async def generate() -> None:
            async for _ in built.engine.stream(prompt, max_tokens=4):
                pass

        with pytest.raises(EngineUnavailable) as refused:
            asyncio.run(generate())
        assert refused.value.code == "model_server_auth"
        assert built.engine.running == 0
    finally:
        built.engine.close()
    seen = "\n".join(
        [r.text for r in replies] + [ready.text] + [r.getMessage() for r in caplog.records]
    )
    assert "401" in seen  # the upstream's refusal is in the log...
    assert wrong not in seen  # ...and neither key is anywhere
    assert upstream.key not in seen


def test_a_stopped_server_is_a_clear_503_and_not_ready(
    components: Components, tmp_path: Path
) -> None:
    server = start_upstream(tmp_path)
    settings = remote_settings(components.settings, server)
    built = remote_components(components, settings)
    try:
        for base in serve_in_thread(create_app(settings, built)):
            client = httpx.Client(base_url=base, timeout=120)
            assert client.get("/readyz").status_code == 200
            # Killed in the middle of an answer: the stream ends with an error event.
            events: list[tuple[str, str]] = []
            with client.stream("POST", "/api/chat", json={"question": QUESTION}) as response:
                block = ""
                for line in response.iter_lines():
                    block += line + "\n"
                    if line.startswith("event: token") and server.process.poll() is None:
                        server.stop()
                    if not line:
                        events += sse_events(block)
                        block = ""
            events += sse_events(block)
            assert events[-1][0] == "error", events
            assert '"model_server_error"' in events[-1][1]

            reply = client.post("/api/chat", json={"question": QUESTION, "stream": False})
            streamed = client.post("/api/chat", json={"question": QUESTION})
            ready = client.get("/readyz")
            client.close()
        for refused in (reply, streamed):
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["type"] == "model_unavailable"
            assert refused.headers["retry-after"]
        assert ready.status_code == 503
        assert ready.json()["checks"]["model_server"].startswith("unavailable (the model server")
        assert built.engine.running == 0
    finally:
        server.stop()
        built.engine.close()


def test_a_client_that_leaves_frees_its_slot_and_stops_the_server(
    components: Components, upstream: Upstream
) -> None:
    """What shows the answer was stopped, not left to end, is the upstream server's
    "Disconnected from client": it logs that only for a connection closed mid-answer.
    The waits are hang guards (a fixed 5 s for the slot failed on a loaded machine)."""
    settings = remote_settings(
        components.settings, upstream, parallel=1, queue_size=0, max_tokens=300, temperature=0.7
    )
    built = remote_components(components, settings)
    engine = built.engine
    before = upstream.log.read_text().count("Disconnected from client")
    try:
        for base in serve_in_thread(create_app(settings, built)):
            with httpx.Client(base_url=base, timeout=120) as client:
                with client.stream("POST", "/api/chat", json={"question": QUESTION}) as response:
                    for line in response.iter_lines():
                        if line.startswith("event: token"):
                            break  # first token: now walk away
                deadline = time.monotonic() + HANG_GUARD_S
                while engine.running:
                    assert time.monotonic() < deadline, "the slot stayed taken"
                    time.sleep(0.02)
                # The server saw the upstream connection close and stopped generating.
                while upstream.log.read_text().count("Disconnected from client") == before:
                    assert time.monotonic() < deadline, upstream.log.read_text()[-2000:]
                    time.sleep(0.1)
                # The only slot is free again, with no queue: the next answer gets it.
                reply = client.post("/api/chat", json={"question": QUESTION, "stream": False})
                assert reply.status_code == 200, reply.text
    finally:
        engine.close()


def test_a_full_queue_is_refused_at_once_with_retry_after(
    components: Components, upstream: Upstream
) -> None:
    settings = remote_settings(
        components.settings, upstream, parallel=1, queue_size=1, max_tokens=200
    )
    built = remote_components(components, settings)
    engine = built.engine

    async def wait_for(condition: Callable[[], bool]) -> None:
        # A guard against a hang, not a time limit: on a loaded 2-core machine the
        # upstream server took over 60 s to start the first answer.
        deadline = time.monotonic() + 600
        while not condition():
            assert time.monotonic() < deadline, (engine.running, engine.waiting)
            await asyncio.sleep(0.02)

    async def run(base: str) -> tuple[httpx.Response, bool, str]:
        async with httpx.AsyncClient(base_url=base, timeout=600) as client:

            async def ask() -> str:
                # Long: the first answer must still run while the second queues (the
                # 13-token answer to QUESTION could end first, leaving the queue empty).
                body = {"question": LONG_QUESTION, "stream": False}
                return (await client.post("/api/chat", json=body)).text

            first = asyncio.create_task(ask())
            await wait_for(lambda: engine.running == 1)
            second = asyncio.create_task(ask())
            await wait_for(lambda: engine.waiting == 1)
            metrics = (await client.get("/metrics")).text
            third = await client.post("/api/chat", json={"question": QUESTION, "stream": False})
            # Refused at once, not after a wait: while the answer ahead of it still runs
            # (an order, not a time: a fixed 2 s failed on a loaded machine).
            at_once = not first.done() and engine.running == 1
            await asyncio.gather(first, second)
            return third, at_once, metrics

    try:
        for base in serve_in_thread(create_app(settings, built)):
            third, at_once, metrics = asyncio.run(run(base))
    finally:
        engine.close()
    assert third.status_code == 429, third.text
    assert third.json()["error"]["type"] == "model_busy"
    assert int(third.headers["retry-after"]) >= 1
    assert at_once, "refused only after the answer ahead of it ended"
    assert "docchat_llm_running_generations 1.0" in metrics
    assert "docchat_llm_waiting_requests 1.0" in metrics
    assert engine.running == 0
    assert engine.waiting == 0


def test_the_deadline_ends_a_slow_answer(components: Components, upstream: Upstream) -> None:
    """The 504 says the deadline fired; the upstream server's "Disconnected from
    client" says it ended the generation there rather than letting it run on (what a
    fixed 10 s limit stood for, and failed on a loaded machine). Where retrieval alone
    outlasted the deadline, the upstream server was never asked."""
    settings = remote_settings(
        components.settings, upstream, request_timeout_s=1.0, max_tokens=2000, temperature=0.7
    )
    built = remote_components(components, settings)
    log = upstream.log.read_text()
    asked, stopped = log.count("POST /v1/chat/completions"), log.count("Disconnected from client")
    try:
        with TestClient(create_app(settings, built)) as client:
            reply = client.post("/api/chat", json={"question": LONG_QUESTION, "stream": False})
        assert reply.status_code == 504, reply.text
        assert reply.json()["error"]["type"] == "timeout"
        assert built.engine.running == 0
        deadline = time.monotonic() + HANG_GUARD_S
        while (log := upstream.log.read_text()).count("POST /v1/chat/completions") > asked:
            if log.count("Disconnected from client") > stopped:
                break
            assert time.monotonic() < deadline, log[-2000:]
            time.sleep(0.1)
    finally:
        built.engine.close()


def test_stats_count_the_streamed_tokens(remote: Components) -> None:
    engine = remote.engine
    prompt = engine.format([{"role": "user", "content": "Count from one to twenty."}])
    generation = engine.stream(prompt, max_tokens=8)

    async def generate() -> str:
        return "".join([p async for p in generation])

    assert asyncio.run(generate())
    stats = generation.stats
    assert stats.completion_tokens == 8
    assert stats.finish_reason == "length"
    assert stats.prompt_tokens > 0
    assert stats.time_to_first_token_s is not None


def test_docchat_ask_uses_the_remote_server_and_reports_it_gone(
    components: Components, upstream: Upstream
) -> None:
    def ask(url: str) -> subprocess.CompletedProcess[str]:
        data_dir = components.settings.data_dir
        env = {
            **os.environ,
            "DOCCHAT_DATA_DIR": str(data_dir),
            "DOCCHAT_SECRETS_DIR": str(data_dir / "no-secrets"),
            "DOCCHAT_LLM__BACKEND": "remote",
            "DOCCHAT_LLM__REMOTE_URL": url,
            "DOCCHAT_LLM__REMOTE_MODEL": REMOTE_MODEL,
            "DOCCHAT_LLM__REMOTE_API_KEY": upstream.key,
            "DOCCHAT_LLM__MAX_TOKENS": "48",
            "COLUMNS": "200",
        }
        command = [sys.executable, "-m", "app.cli", "ask", QUESTION]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    answered = ask(upstream.url)
    assert answered.returncode == 0, answered.stderr
    assert "corpus/reference/api.html" in answered.stdout
    gone = ask(f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
    assert gone.returncode == 1
    assert "the model server cannot be reached" in gone.stderr
    assert "Traceback" not in gone.stderr
    assert upstream.key not in answered.stdout + answered.stderr + gone.stdout + gone.stderr
