"""Unbounded consumption: body size, question size, answer length, context, rate,
uploads — and the response headers."""

from __future__ import annotations

import http.client
import io
import secrets
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.api.middleware import CSP
from app.components import Components
from app.main import create_app
from app.security.limits import RateLimiter
from tests.conftest import CORPUS, serve_in_thread, with_auth


def app_with(components: Components, **security: object) -> TestClient:
    settings = components.settings.model_copy(
        update={"security": components.settings.security.model_copy(update=security)}
    )
    return TestClient(create_app(settings, components.using(settings=settings)))


def test_body_over_the_cap_is_refused_before_it_is_read(components: Components) -> None:
    with app_with(components, max_body_bytes=2048) as client:
        response = client.post(
            "/api/chat", content=b"x" * 4096, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["error"]["type"] == "body_too_large"


@pytest.fixture
def small_body_server(components: Components) -> Iterator[str]:
    settings = components.settings.model_copy(
        update={
            "security": components.settings.security.model_copy(update={"max_body_bytes": 2048})
        }
    )
    yield from serve_in_thread(create_app(settings, components))


def test_chunked_body_is_cut_off_at_the_cap(small_body_server: str) -> None:
    """No Content-Length: the server counts while reading and stops at the cap."""
    target = urlsplit(small_body_server)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    conn.putrequest("POST", "/api/chat")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    piece = b"x" * 1024
    try:
        for _ in range(64):
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may close before the whole body was sent: that is the point
    response = conn.getresponse()
    assert response.status == 413
    conn.close()


def test_max_tokens_has_a_server_side_ceiling(client: TestClient) -> None:
    ceiling = client.app.state.components.settings.llm.max_tokens  # type: ignore[attr-defined]
    body = {
        "model": "docchat",
        "messages": [{"role": "user", "content": "Describe everything about backups in detail."}],
        "max_tokens": 100_000,
    }
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.json()["usage"]["completion_tokens"] <= ceiling + 2


def test_prompt_that_cannot_fit_is_a_clear_400(components: Components) -> None:
    settings = components.settings.model_copy(
        update={"rag": components.settings.rag.model_copy(update={"max_question_chars": 100_000})}
    )
    question = "What port does the widget server use? " + "widget port " * 4000
    with TestClient(create_app(settings, components.using(settings=settings))) as client:
        response = client.post("/api/chat", json={"question": question})
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["type"] == "context_length_exceeded"
        assert "context" in error["message"]
        body = {"model": "docchat", "messages": [{"role": "user", "content": question}]}
        assert client.post("/v1/chat/completions", json=body).status_code == 400


def test_rate_limit_per_key_with_retry_after(components: Components, keys: dict[str, str]) -> None:
    settings = with_auth(components.settings, rate_limit_per_minute=3)
    with TestClient(create_app(settings, components)) as client:
        chat = {"Authorization": f"Bearer {keys['chat']}"}
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        assert [client.get("/v1/models", headers=chat).status_code for _ in range(3)] == [200] * 3
        limited = client.get("/v1/models", headers=chat)
        assert limited.status_code == 429
        assert limited.json()["error"]["type"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 20
        # Another key has its own budget; probes are never limited.
        assert client.get("/v1/models", headers=admin).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_rate_limiter_refills() -> None:
    limiter = RateLimiter(120)  # two a second
    assert all(limiter.hit("k") == 0 for _ in range(120))
    assert limiter.hit("k") >= 1
    time.sleep(0.6)
    assert limiter.hit("k") == 0
    assert RateLimiter(0).hit("k") == 0  # 0 turns the limit off


def test_upload_checks_type_count_and_size(components: Components, keys: dict[str, str]) -> None:
    settings = with_auth(components.settings, max_upload_files=2, max_upload_bytes=50_000)
    headers = {"Authorization": f"Bearer {keys['ingest']}"}
    guide = (CORPUS / "guide.md").read_bytes()
    with TestClient(create_app(settings, components)) as client:

        def upload(*files: tuple[str, bytes]) -> object:
            return client.post(
                "/api/documents",
                files=[("files", (name, io.BytesIO(data))) for name, data in files],
                data={"collection": "uploads-test"},
                headers=headers,
            )

        refused = upload(("tool.exe", b"MZ\x90\x00"))
        assert refused.status_code == 415  # type: ignore[attr-defined]
        assert upload(("../../etc/x.md", guide)).status_code == 200  # name reduced to x.md
        assert upload(("a.md", guide), ("b.md", guide), ("c.md", guide)).status_code == 400  # type: ignore[attr-defined]
        assert upload(("big.md", b"word " * 20_000)).status_code == 413  # type: ignore[attr-defined]
        fresh = b"# Widget colours\n\nThe default widget colour is teal. " * 5
        ok = upload(("colours.md", fresh))
        assert ok.status_code == 200  # type: ignore[attr-defined]
        summary = ok.json()  # type: ignore[attr-defined]
        assert summary["new"] == 1
        assert summary["chunks_written"] > 0
        copy = upload(("guide-copy.md", guide)).json()  # type: ignore[attr-defined]
        assert copy["quarantined"] == 1  # the same text as x.md: kept out of the index
        assert "exact duplicate" in copy["findings"][0]["reason"]
        assert (
            client.post(
                "/api/documents",
                files=[("files", ("x.md", b"# x"))],
                headers={"Authorization": f"Bearer {keys['chat']}"},
            ).status_code
            == 403
        )
    uploads = components.settings.data_dir / "uploads" / "uploads-test"
    assert sorted(p.name for p in uploads.iterdir()) == ["colours.md", "guide-copy.md", "x.md"]
    assert not (components.settings.data_dir.parent / "etc").exists()


def test_security_headers_and_closed_cors(client: TestClient) -> None:
    for path in ("/", "/api/conversations/none", "/healthz"):
        response = client.get(path)
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
    preflight = client.options(
        "/api/chat",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_opens_only_to_configured_origins(components: Components) -> None:
    with app_with(components, cors_origins=["https://intranet.example"]) as client:
        allowed = client.options(
            "/api/chat",
            headers={
                "Origin": "https://intranet.example",
                "Access-Control-Request-Method": "POST",
            },
        )
        assert allowed.headers["access-control-allow-origin"] == "https://intranet.example"
        other = client.options(
            "/api/chat",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers


def test_hsts_is_sent_in_production_only(components: Components, client: TestClient) -> None:
    """Issue 22: no Strict-Transport-Security anywhere. Now production sends it (one
    year by default, security.hsts_max_age_s; 0 turns it off), development does not."""
    assert "strict-transport-security" not in client.get("/healthz").headers
    security = components.settings.security.model_copy(
        update={"key_pepper": SecretStr(secrets.token_urlsafe(48))}
    )
    for max_age, expected in ((None, "max-age=31536000"), (600, "max-age=600"), (0, None)):
        update = {} if max_age is None else {"hsts_max_age_s": max_age}
        settings = components.settings.model_copy(
            update={"env": "production", "security": security.model_copy(update=update)}
        )
        with TestClient(create_app(settings, components.using(settings=settings))) as prod:
            for path in ("/healthz", "/api/conversations/none"):
                assert prod.get(path).headers.get("strict-transport-security") == expected
