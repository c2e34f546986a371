"""Personal-data redaction: what it catches on a labelled sample (printed, with a floor),
what it leaves alone, and that it changes what is stored and logged, not what the user
reads."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.components import Components, build_components
from app.main import create_app
from app.security.pii import KINDS, PiiRedactor
from app.security.redaction import Redactor
from app.store.models import Conversation, Feedback, Message
from app.telemetry import logging as logs
from tests.conftest import FIXTURES, Models, ingest_into, make_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.pii_redaction import read_sample, score

SAMPLE = FIXTURES / "pii_sample.jsonl"


def test_catch_rate_on_the_labelled_sample(capsys: pytest.CaptureFixture[str]) -> None:
    rows = read_sample(SAMPLE)
    assert len(rows) >= 40
    report = score(PiiRedactor(KINDS), rows)
    with capsys.disabled():
        print(f"\npersonal data on {len(rows)} labelled lines:")
        for kind, r in report.items():
            print(
                f"  {kind:6} caught {r['caught']:.0f}/{r['labelled']:.0f} "
                f"(recall {r['recall']:.2f}), precision {r['precision']:.2f}"
            )
    every = report["all"]
    assert every["recall"] >= 0.9
    assert every["precision"] >= 0.95
    for kind in ("card", "iban", "ip", "email", "phone"):
        assert report[kind]["recall"] >= 0.85, kind


@pytest.mark.parametrize(
    "text",
    [
        "How do I upgrade from version 3.11.4 to 3.12.1?",
        "The server listens on port 8080; bind it to 0.0.0.0 or 127.0.0.1.",
        "It broke on 2024-05-01 at 12:30:45; commit 9f86d081884c7d659a2feaa0c55ad015.",
        "Order 4111 1111 1111 1112 fails the Luhn check.",
    ],
)
def test_ordinary_technical_text_is_left_alone(text: str) -> None:
    assert PiiRedactor().redact(text) == text


def test_placeholders_and_kinds() -> None:
    text = "jane@example.com, +1 415 555 0132, 4111 1111 1111 1111, 203.0.113.45"
    assert PiiRedactor().redact(text) == "[EMAIL], [PHONE], [CARD], [IP]"
    assert PiiRedactor(["email"]).redact(text).startswith("[EMAIL], +1 415")
    with pytest.raises(ValueError, match="unknown"):
        PiiRedactor(["names"])


def test_log_lines_carry_no_personal_data_when_on() -> None:
    formatter = logs.JsonFormatter(Redactor([], also=PiiRedactor().redact))
    record = logging.LogRecord(
        "docchat.test", logging.INFO, __file__, 1, "user wrote from %s", ("jane@example.com",), None
    )
    line = formatter.format(record)
    assert "jane@example.com" not in line
    assert "[EMAIL]" in line


QUESTION = (
    "I am jane.doe@example.org, phone +1 415 555 0132. What address do I write to for "
    "support, and what number do I call?"
)


@pytest.fixture(scope="module")
def private(
    tmp_path_factory: pytest.TempPathFactory, models: Models
) -> Iterator[tuple[TestClient, Components]]:
    root = tmp_path_factory.mktemp("pii")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(FIXTURES / "corpus" / "guide.md", corpus / "guide.md")
    (corpus / "support.md").write_text(
        "# Support\n\nWrite to the support team at help@widgets.example.com or call "
        "+1 212 555 0143 on working days. Give your order number.\n"
    )
    settings = make_settings(root / "data", privacy={"redact_personal_data": True})
    ingest_into(settings, models.embedder, corpus)
    components = build_components(
        settings, writer=False, embedder=models.embedder, engine=models.engine
    )
    try:
        with TestClient(create_app(settings, components)) as client:
            yield client, components
    finally:
        components.close()


def streamed(client: TestClient, question: str) -> dict[str, Any]:
    """The text of the token events and the `done` event of a streamed answer."""
    tokens, done = [], {}
    with client.stream("POST", "/api/chat", json={"question": question}) as response:
        assert response.status_code == 200
        event = ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = json.loads(line.split(":", 1)[1])
                if event == "token":
                    tokens.append(data["text"])
                elif event == "done":
                    done = data
    return {"text": "".join(tokens), **done}


def test_stored_text_is_redacted_and_the_answer_read_is_not(
    private: tuple[TestClient, Components],
) -> None:
    """The user reads the personal data as written (the model quotes the support line
    and the user's own number under greedy decoding, the same in every process since
    the system prompt's canary is pinned); only the stored copy has placeholders.

    Before, the read half was checked only `if` the answer held personal data, so
    redacting what the user reads passed; with the streamed tokens redacted (a
    deliberate break in the chat service, reverted), this test failed."""
    client, components = private
    pii = PiiRedactor()
    answer = streamed(client, QUESTION)
    print(f"\nstreamed answer: {answer['answer']!r}")
    read = pii.find(answer["text"])
    assert read, f"the model quoted no personal data: {answer['text']!r}"
    assert answer["answer"] == answer["text"]  # the done event's answer is the one read
    with components.db.session() as session:
        conversation = session.get_one(Conversation, answer["conversation_id"])
        question, reply = conversation.messages
        assert question.content == pii.redact(QUESTION)
        assert "jane.doe@example.org" not in question.content
        assert "[EMAIL]" in question.content
        assert "[PHONE]" in question.content
        assert "jane.doe" not in conversation.title
        # The answer as the user read it, and as stored: the same but for personal data.
        assert reply.content == pii.redact(answer["text"])
        assert reply.content != answer["text"]
        assert pii.find(reply.content) == []
        for item in read:
            assert answer["text"][item.start : item.end] not in reply.content
    rated = client.post(
        f"/api/messages/{answer['message_id']}/feedback",
        json={"rating": "down", "comment": "wrong, mail me at jane.doe@example.org"},
    )
    assert rated.status_code == 200, rated.text
    with components.db.session() as session:
        stored = session.query(Feedback).filter_by(message_id=answer["message_id"]).one()
        assert stored.comment == "wrong, mail me at [EMAIL]"
        assert session.get_one(Message, answer["message_id"]).content == reply.content


@pytest.mark.parametrize(
    "phone",
    [
        "0044 20 7946 0958",  # issue 22: stored unredacted (the 00 prefix, from the US region)
        "00 44 20 7946 0958",
        "0049 30 901820",
        "0033 1 42 68 53 00",
        "+44 20 7946 0958",
        "(415) 555-0132",
    ],
)
def test_international_phone_formats_are_redacted(phone: str) -> None:
    assert PiiRedactor().redact(f"Call me on {phone}, thanks.") == "Call me on [PHONE], thanks."


@pytest.mark.parametrize(
    "text",
    [
        "Upgrade from v1.0044.2 to 2024.10.15 (tag v2.0.0-0044).",
        "Started 2024-01-15 at 00:44:12, ran until 00:15:00 on 10/12/2024.",
        "Listen on localhost:00443 or 0.0.0.0:8000; build 00123, id=0044207946.",
    ],
)
def test_versions_dates_and_ports_with_00_stay(text: str) -> None:
    assert PiiRedactor().redact(text) == text
