"""The curation routes: admin keys only, real app, real stores, problems as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.components import build_components
from app.main import create_app
from tests.conftest import Models, bearer, with_auth
from tests.curation.conftest import FIRST, SECOND, Rated


@pytest.fixture(scope="module")
def api(rated: Rated, models: Models) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    components = build_components(
        rated.settings, writer=False, embedder=models.embedder, engine=models.engine
    )
    keys = {
        scope: bearer(components.guards.keys.create(f"curation-{scope}", scope))
        for scope in ("chat", "admin")
    }
    try:
        with TestClient(create_app(with_auth(rated.settings), components)) as client:
            yield client, keys
    finally:
        components.close()


def test_only_admin_keys_reach_curation(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, keys = api
    for method, path in (
        ("GET", "/api/admin/examples"),
        ("GET", "/api/admin/review"),
        ("POST", "/api/admin/datasets"),
        ("POST", "/api/admin/messages/x/accept"),
    ):
        assert client.request(method, path).status_code == 401
        refused = client.request(method, path, headers=keys["chat"], json={})
        assert refused.status_code == 403
        assert refused.json()["error"]["type"] == "forbidden"


def test_review_accept_correct_add_drop_refresh(
    api: tuple[TestClient, dict[str, dict[str, str]]], rated: Rated
) -> None:
    client, keys = api
    admin = keys["admin"]
    review = client.get("/api/admin/review", params={"rating": "down"}, headers=admin)
    assert review.status_code == 200, review.text
    (item,) = [i for i in review.json() if i["message_id"] == rated.second["message_id"]]
    assert (item["question"], item["comment"]) == (SECOND, "say widgetctl --version")
    assert item["answer"] == rated.second["answer"]
    assert item["finish_reason"] == rated.second["finish_reason"]  # as the answer ended
    assert item["passages"][0]["text"]
    assert item["passages"][0]["source"] == rated.second["citations"][0]["source"]

    accepted = client.post(f"/api/admin/messages/{rated.first['message_id']}/accept", headers=admin)
    assert accepted.status_code == 200, accepted.text
    example = accepted.json()
    assert (example["question"], example["rating"], example["reviewer"]) == (
        FIRST,
        "up",
        "curation-admin",
    )
    corrected = client.post(
        f"/api/admin/messages/{rated.second['message_id']}/correct",
        json={"answer": "Run widgetctl --version."},
        headers=admin,
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["model_answer"] == rated.second["answer"]
    blank = client.post(
        f"/api/admin/messages/{rated.second['message_id']}/correct",
        json={"answer": " "},
        headers=admin,
    )
    assert blank.status_code == 422
    assert blank.json()["error"]["type"] == "invalid_request"

    added = client.post(
        "/api/admin/examples",
        json={"question": "Which file?", "answer": "widget.toml", "sources": ["guide.md"]},
        headers=admin,
    )
    assert added.status_code == 201, added.text
    added_id = added.json()["id"]
    assert added.json()["passages"][0]["content_hash"]
    missing = client.post(
        "/api/admin/examples",
        json={"question": "q", "answer": "a", "sources": ["nope.md"]},
        headers=admin,
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found"

    shown = client.get(f"/api/admin/examples/{added_id}", headers=admin)
    assert shown.json()["status"] == "active"
    refreshed = client.post(f"/api/admin/examples/{added_id}/refresh", headers=admin)
    assert refreshed.status_code == 200, refreshed.text
    dropped = client.post(f"/api/admin/examples/{added_id}/drop", headers=admin)
    assert dropped.json()["status"] == "dropped"
    listed = client.get("/api/admin/examples", headers=admin).json()
    assert added_id not in {e["id"] for e in listed}
    assert example["id"] in {e["id"] for e in listed}
    gone = client.get("/api/admin/examples/nope", headers=admin)
    assert gone.status_code == 404

    pending = client.get("/api/admin/review", params={"pending": "true"}, headers=admin).json()
    assert rated.first["message_id"] not in {i["message_id"] for i in pending}


def test_datasets_over_http(
    api: tuple[TestClient, dict[str, dict[str, str]]], rated: Rated
) -> None:
    client, keys = api
    admin = keys["admin"]
    client.post(f"/api/admin/messages/{rated.first['message_id']}/accept", headers=admin)
    built = client.post("/api/admin/datasets", json={"name": "api-a"}, headers=admin)
    assert built.status_code == 201, built.text
    info = built.json()
    assert info["file_ok"]
    assert info["created_by"] == "curation-admin"
    again = client.post("/api/admin/datasets", json={"name": "api-a"}, headers=admin)
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "conflict"
    assert client.get("/api/admin/datasets/api-a", headers=admin).json() == info
    assert "api-a" in {d["name"] for d in client.get("/api/admin/datasets", headers=admin).json()}

    exported = client.get("/api/admin/datasets/api-a/export", headers=admin)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in exported.text.splitlines()]
    assert len(rows) == info["n_examples"]
    assert all(r["messages"][0]["role"] == "system" for r in rows)
    raw = client.get(
        "/api/admin/datasets/api-a/export",
        params={"format": "jsonl", "split": "train"},
        headers=admin,
    )
    assert len(raw.text.splitlines()) == info["n_train"]
    bad = client.get("/api/admin/datasets/api-a/export", params={"format": "csv"}, headers=admin)
    assert bad.status_code == 422

    client.post("/api/admin/examples", json={"question": "New?", "answer": "Yes."}, headers=admin)
    client.post("/api/admin/datasets", json={"name": "api-b"}, headers=admin)
    diff = client.get("/api/admin/datasets/api-a/diff/api-b", headers=admin)
    assert diff.status_code == 200, diff.text
    assert [r["question"] for r in diff.json()["added"]] == ["New?"]
    assert client.get("/api/admin/datasets/nope", headers=admin).status_code == 404


def test_a_dataset_name_with_a_trailing_newline_is_refused(
    api: tuple[TestClient, dict[str, dict[str, str]]], rated: Rated
) -> None:
    """Before issue #22's fix, `^...$` with re.match let "api-nl\n" through: 201, and a
    file datasets/api-nl\n.jsonl."""
    client, keys = api
    admin = keys["admin"]
    client.post(f"/api/admin/messages/{rated.first['message_id']}/accept", headers=admin)
    refused = client.post("/api/admin/datasets", json={"name": "api-nl\n"}, headers=admin)
    assert refused.status_code == 422, refused.text
    assert "name" in refused.json()["error"]["message"]
    assert not list((rated.settings.data_dir / "datasets").glob("api-nl*"))


def test_the_review_page_is_served(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, _keys = api
    page = client.get("/static/review.html")
    assert page.status_code == 200
    assert '<script type="module" src="/static/review.js">' in page.text
    script = client.get("/static/review.js")
    assert script.status_code == 200
    # Server text reaches the page as text only.
    assert "innerHTML" not in script.text
    assert "/api/admin/review" in script.text
