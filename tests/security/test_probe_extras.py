"""The probe's smaller findings (issue 11, "also seen"): documents of other collections,
failed uploads left on disk, loose booleans, inconsistent limits, and an OpenAPI
document that described the wrong shapes."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient

from app.components import Components
from app.main import create_app
from app.store.models import Document
from tests.conftest import CORPUS, bearer, with_auth

QUESTION = "What port does the widget server listen on by default?"


def test_a_chat_key_reads_only_the_collection_it_is_answered_from(
    components: Components, keys: dict[str, str], auth_client: TestClient
) -> None:
    notes = (CORPUS / "notes.txt").read_bytes()
    uploaded = auth_client.post(
        "/api/documents",
        files=[("files", ("salaries.txt", io.BytesIO(notes + b"\nSalary bands are private.")))],
        data={"collection": "hidden-hr"},
        headers=bearer(keys["ingest"]),
    )
    assert uploaded.status_code == 200, uploaded.text
    with components.db.session() as session:
        other = session.query(Document).filter(Document.collection == "hidden-hr").one().id
        served = (
            session.query(Document)
            .filter(Document.collection == components.settings.vectors.collection)
            .first()
        )
        assert served is not None
        served_id = served.id
    chat, admin = bearer(keys["chat"]), bearer(keys["admin"])
    assert auth_client.get(f"/api/documents/{served_id}", headers=chat).status_code == 200
    refused = auth_client.get(f"/api/documents/{other}", headers=chat)
    assert refused.status_code == 404  # the same answer as for a document that is not there
    assert refused.json()["error"]["type"] == "not_found"
    found = auth_client.get(f"/api/documents/{other}", headers=admin)
    assert found.status_code == 200
    assert found.json()["collection"] == "hidden-hr"


def test_an_upload_that_fails_to_ingest_leaves_no_file(
    components: Components, keys: dict[str, str]
) -> None:
    settings = with_auth(components.settings)
    folder = components.settings.data_dir / "uploads" / "fail-test"
    good = b"# Widget sizes\n\nWidgets come in three sizes: small, medium and large. " * 4
    with TestClient(create_app(settings, components)) as client:

        def upload(name: str, data: bytes) -> dict[str, object]:
            response = client.post(
                "/api/documents",
                files=[("files", (name, io.BytesIO(data)))],
                data={"collection": "fail-test"},
                headers=bearer(keys["ingest"]),
            )
            assert response.status_code == 200, response.text
            body: dict[str, object] = response.json()
            return body

        assert upload("sizes.md", good)["new"] == 1
        # A PDF that is not one: the ingest fails for it.
        assert upload("broken.pdf", b"%PDF-1.7 this is not a pdf")["failed"] == 1
        assert not (folder / "broken.pdf").exists()
        # A good file replaced by a broken one keeps its good version, on disk too.
        assert upload("sizes.md", b"\x00\x01\x02" * 50)["failed"] == 1
        assert (folder / "sizes.md").read_bytes() == good


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat", {"question": QUESTION, "stream": "yes"}),
        (
            "/v1/chat/completions",
            {"model": "docchat", "stream": "yes", "messages": [{"role": "user", "content": "x"}]},
        ),
    ],
)
def test_a_boolean_must_be_a_boolean(
    client: TestClient, path: str, body: dict[str, object]
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert "stream" in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/api/admin/ingest-runs", "/api/admin/feedback"])
@pytest.mark.parametrize("limit", ["0", "-3", "100000", "many"])
def test_admin_lists_refuse_a_bad_limit_alike(client: TestClient, path: str, limit: str) -> None:
    response = client.get(path, params={"limit": limit})
    assert response.status_code == 422, (path, limit, response.text)
    assert "limit" in response.json()["error"]["message"]


def test_the_openapi_document_describes_the_real_shapes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    metrics = paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    chat = paths["/api/chat"]["post"]["responses"]
    assert {"application/json", "text/event-stream"} <= set(chat["200"]["content"])
    assert chat["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChatAnswer")
    for route in ("/api/chat", "/v1/chat/completions"):
        responses = paths[route]["post"]["responses"]
        assert {"404", "413", "429"} <= set(responses), route
    upload = paths["/api/documents"]["post"]["requestBody"]["content"]
    assert "files" in upload["multipart/form-data"]["schema"]["properties"]
