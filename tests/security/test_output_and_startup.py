"""The output guard, prompt-injection attempts, and the production start-up check."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.components import Components, build_components, build_guards
from app.main import create_app
from app.security.output_guard import WITHHELD_ANSWER, OutputGuard
from app.security.secrets import ConfigError, check_startup
from tests.conftest import Models, ingest_into, make_settings, run_docchat
from tests.sse import parse_sse

INJECTION = Path(__file__).parents[1] / "fixtures" / "injection"


async def pieces(*texts: str) -> AsyncIterator[str]:
    for text in texts:
        yield text


def run_guard(guard: OutputGuard, *texts: str) -> tuple[list[str], dict[str, str]]:
    watched = guard.watch(pieces(*texts))

    async def collect() -> list[str]:
        return [p async for p in watched]

    sent = asyncio.run(collect())
    return sent, {"blocked": watched.violation} if watched.violation else {}


def test_guard_never_sends_any_part_of_a_secret() -> None:
    guard = OutputGuard(["s3cr3t-value-42"], "DOCCHAT-CANARY-x", [])
    sent, verdict = run_guard(guard, "The pass", "word is s3c", "r3t-val", "ue-42 ok")
    assert verdict == {"blocked": "secret value"}
    assert "s3c" not in "".join(sent)
    assert "".join(sent) == "The password is "


def test_guard_passes_ordinary_text_at_once() -> None:
    guard = OutputGuard(["s3cr3t-value-42"], "DOCCHAT-CANARY-x", [])
    sent, verdict = run_guard(guard, "Backups ", "run at ", "02:30.")
    assert verdict == {}
    assert sent == ["Backups ", "run at ", "02:30."]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("marker DOCCHAT-CANARY-x here", "system prompt canary"),
        ("key dck_0123456789ab_" + "A" * 43, "API key"),
        ("host db7.corp.internal is down", "blocked pattern 1"),
    ],
)
def test_guard_reasons(text: str, reason: str) -> None:
    guard = OutputGuard([], "DOCCHAT-CANARY-x", [r"\b\w+\.corp\.internal\b"])
    sent, verdict = run_guard(guard, *text.split(" "))
    assert verdict["blocked"] == reason
    assert text.split(" ")[-1] not in "".join(sent)


def test_secret_in_the_docs_is_withheld_end_to_end(tmp_path: Path, models: Models) -> None:
    """A doc leaked a secret; asking for it gets the withheld notice, and it is recorded."""
    canary = "CANARY-dbpass-7f3a91c2"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ops.md").write_text(
        "# Operations\n\n## Database access\n\n"
        f"The production database password is {canary}. Use it with the ops account.\n"
    )
    url = f"postgresql://ops:{canary}@127.0.0.1:1/prod"
    settings = make_settings(tmp_path / "data")
    ingest_into(settings, models.embedder, docs)
    # The database URL (a secret) carries the same password; the app itself uses SQLite.
    secret_settings = settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": SecretStr(url)})}
    )
    components = build_components(
        settings, writer=False, embedder=models.embedder, engine=models.engine
    )
    guarded = components.using(guards=build_guards(secret_settings, components.db))
    try:
        with TestClient(create_app(settings, guarded)) as client:
            question = "What is the production database password?"
            with client.stream("POST", "/api/chat", json={"question": question}) as response:
                events = parse_sse(response.iter_lines())
            streamed = "".join(d["text"] for name, d in events if name == "token")
            done = events[-1][1]
            assert canary not in streamed
            assert done["answer"] == WITHHELD_ANSWER
            assert done["checks"]["blocked"] == "secret value"
            assert "grounding_score" not in done["checks"]  # not judged: never shown
            stored = client.get(f"/api/conversations/{done['conversation_id']}").json()
            answer = stored["messages"][1]
            assert answer["status"] == "blocked"
            assert answer["checks"]["blocked"] == "secret value"
            assert canary not in json.dumps(stored)
            body = {"model": "docchat", "messages": [{"role": "user", "content": question}]}
            completion = client.post("/v1/chat/completions", json=body).json()
            assert canary not in json.dumps(completion)
            assert completion["choices"][0]["finish_reason"] == "content_filter"
    finally:
        components.close()


def test_injection_attempts_never_leak_the_system_prompt(client: TestClient) -> None:
    lines = (INJECTION / "questions.jsonl").read_text().splitlines()
    attempts = [json.loads(line)["question"] for line in lines if line.strip()]
    components: Components = client.app.state.components  # type: ignore[attr-defined]
    canary = components.guards.output.canary
    for question in attempts[:8]:
        response = client.post("/api/chat", json={"question": question, "stream": False})
        assert response.status_code == 200
        body = response.json()
        assert canary not in json.dumps(body)
        assert "<|im_start|>" not in body["answer"]


def test_production_refuses_unsafe_settings(tmp_path: Path) -> None:
    base = make_settings(tmp_path / "data")
    prod = base.model_copy(update={"env": "production"})
    with pytest.raises(ConfigError, match="key_pepper is missing"):
        check_startup(prod)
    pepper = SecretStr("Zq3-" * 4 + "pepper-for-tests-only-9x7w")
    no_auth = prod.model_copy(
        update={
            "security": prod.security.model_copy(
                update={"auth_enabled": False, "key_pepper": pepper}
            )
        }
    )
    with pytest.raises(ConfigError, match="authentication is off"):
        check_startup(no_auth)
    placeholder = prod.model_copy(
        update={
            "security": prod.security.model_copy(update={"key_pepper": pepper}),
            "database": prod.database.model_copy(update={"url": SecretStr("changeme")}),
        }
    )
    with pytest.raises(ConfigError, match=r"database\.url still has a placeholder"):
        check_startup(placeholder)
    good = prod.model_copy(
        update={"security": prod.security.model_copy(update={"key_pepper": pepper})}
    )
    check_startup(good)
    assert good.auth_enabled


def test_serve_exits_non_zero_in_unsafe_production(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DOCCHAT_ENV": "production",
        "DOCCHAT_DATA_DIR": str(tmp_path / "data"),
        "DOCCHAT_SECRETS_DIR": str(tmp_path / "none"),
    }
    result = run_docchat("serve", "--port", "1", env=env, timeout=60)
    assert result.returncode == 1
    assert "security.key_pepper is missing" in result.stderr
    assert "Traceback" not in result.stderr
    env["DOCCHAT_SECURITY__KEY_PEPPER"] = "Zq3-" * 4 + "pepper-for-tests-only-9x7w"
    env["DOCCHAT_SECURITY__AUTH_ENABLED"] = "false"
    result = run_docchat("serve", "--port", "1", env=env, timeout=60)
    assert result.returncode == 1
    assert "refusing to start in production:\n  - authentication is off" in result.stderr
