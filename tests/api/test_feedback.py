"""Feedback on answers: POST /api/messages/{id}/feedback, the conversation view and the
admin review, against the real app, models and stores."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.components import Components
from tests.conftest import bearer

QUESTION = "What port does the widget server listen on by default?"


def ask(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = client.post(
        "/api/chat", json={"question": QUESTION, "stream": False}, headers=headers or {}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def rate(
    client: TestClient, message_id: str, body: Any, headers: dict[str, str] | None = None
) -> Any:
    return client.post(f"/api/messages/{message_id}/feedback", json=body, headers=headers or {})


def counted(client: TestClient, rating: str) -> float:
    """docchat_feedback_total{rating} as GET /metrics shows it."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "docchat_feedback_total" and sample.labels == {"rating": rating}:
                return float(sample.value)
    raise AssertionError(f"docchat_feedback_total{{rating={rating!r}}} not exported")


def messages(
    client: TestClient, conversation_id: str, headers: dict[str, str] | None = None
) -> Any:
    response = client.get(f"/api/conversations/{conversation_id}", headers=headers or {})
    assert response.status_code == 200
    return response.json()["messages"]


def test_rating_is_stored_shown_replaced_and_counted(client: TestClient) -> None:
    answer = ask(client)
    downs, ups = counted(client, "down"), counted(client, "up")

    first = rate(client, answer["message_id"], {"rating": "up"})
    assert first.status_code == 200, first.text
    stored = first.json()
    assert stored["message_id"] == answer["message_id"]
    assert (stored["rating"], stored["comment"], stored["given_by"]) == ("up", None, None)
    question, shown = messages(client, answer["conversation_id"])
    assert question["feedback"] is None
    assert shown["feedback"] == stored

    again = rate(
        client, answer["message_id"], {"rating": "down", "comment": " Port\x00 is 7421?\x1b "}
    )
    assert again.status_code == 200
    assert (again.json()["rating"], again.json()["comment"]) == ("down", "Port is 7421?")
    assert messages(client, answer["conversation_id"])[1]["feedback"] == again.json()
    assert (counted(client, "up"), counted(client, "down")) == (ups + 1, downs + 1)

    review = client.get("/api/admin/feedback", params={"rating": "down", "limit": 500}).json()
    (item,) = [i for i in review if i["message_id"] == answer["message_id"]]
    assert item["question"] == QUESTION
    assert item["comment"] == "Port is 7421?"
    assert answer["answer"].startswith(item["answer_excerpt"].rstrip("…"))
    assert item["citations"][0]["source"] == "corpus/guide.md"
    assert item["citations"][0]["url"].startswith("/sources/")
    assert item["conversation_id"] == answer["conversation_id"]
    ups_only = client.get("/api/admin/feedback", params={"rating": "up", "limit": 500}).json()
    assert all(i["rating"] == "up" for i in ups_only)
    assert answer["message_id"] not in {i["message_id"] for i in ups_only}


def test_unknown_messages_and_questions_are_404(client: TestClient) -> None:
    answer = ask(client)
    question_id = messages(client, answer["conversation_id"])[0]["id"]
    for message_id in ("nope", question_id):
        response = rate(client, message_id, {"rating": "up"})
        assert response.status_code == 404, message_id
        error = response.json()["error"]
        assert (error["type"], error["message"]) == ("not_found", "no such answer")
    assert messages(client, answer["conversation_id"])[1]["feedback"] is None


def test_bad_feedback_is_422_in_the_one_error_shape(client: TestClient) -> None:
    answer_id = ask(client)["message_id"]
    cases: list[tuple[Any, str]] = [
        ({}, "rating"),
        ({"rating": "meh"}, "rating"),
        ({"rating": 1}, "rating"),
        ({"rating": None}, "rating"),
        ({"rating": "up", "comment": 5}, "comment"),
        ({"rating": "up", "comment": "x" * 1001}, "comment"),
        (["up"], "body"),
    ]
    for body, field in cases:
        response = rate(client, answer_id, body)
        assert response.status_code == 422, body
        error = response.json()["error"]
        assert error["type"] == "invalid_request"
        assert field in error["message"], (body, error)
    response = client.post(
        f"/api/messages/{answer_id}/feedback",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    for params in ({"rating": "meh"}, {"limit": 0}, {"limit": 501}):
        response = client.get("/api/admin/feedback", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]["type"] == "invalid_request"
    assert rate(client, answer_id, {"rating": "up", "comment": "x" * 1000}).status_code == 200


def test_feedback_per_key_and_scopes(
    auth_client: TestClient, components: Components, keys: dict[str, str]
) -> None:
    chat, admin = bearer(keys["chat"]), bearer(keys["admin"])
    answer = ask(auth_client, chat)
    answer_id = answer["message_id"]

    assert rate(auth_client, answer_id, {"rating": "up"}).status_code == 401
    mine = rate(auth_client, answer_id, {"rating": "down", "comment": "wrong"}, chat)
    assert mine.status_code == 200
    assert mine.json()["given_by"] == "test-chat"
    # Another chat key cannot see the answer, so cannot rate it either.
    other = bearer(components.guards.keys.create("feedback-other", "chat"))
    assert rate(auth_client, answer_id, {"rating": "up"}, other).status_code == 404
    # An admin's rating is its own; the owner's stays.
    assert rate(auth_client, answer_id, {"rating": "up"}, admin).json()["given_by"] == "test-admin"
    owner_view = messages(auth_client, answer["conversation_id"], chat)[1]["feedback"]
    assert (owner_view["rating"], owner_view["comment"]) == ("down", "wrong")
    assert messages(auth_client, answer["conversation_id"], admin)[1]["feedback"]["rating"] == "up"

    forbidden = auth_client.get("/api/admin/feedback", headers=chat)
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["type"] == "forbidden"
    review = auth_client.get("/api/admin/feedback", params={"limit": 500}, headers=admin).json()
    given = {(i["given_by"], i["rating"]) for i in review if i["message_id"] == answer_id}
    assert given == {("test-chat", "down"), ("test-admin", "up")}
    assert not any(key in json.dumps(review) for key in keys.values())
