"""The passage sentence behind each answer sentence, with the real embedding model, on a
passage of docchat's own docs, and as the chat service returns it."""

from __future__ import annotations

import asyncio

from app.components import Components
from app.rag.support import sentence_support
from app.store.vectors import Hit
from tests.conftest import Models

# docs/getting-started.md as the index holds it.
INSTALL = """Run make run in the repository. It creates a virtual environment in .venv,
builds llama-cpp-python as a portable CPU wheel and installs docchat.

Open that address in a browser and ask a question. make install does steps 1-3 only;
make serve starts the server without ingesting. make clean removes the virtual
environment and caches (not data/)."""
KEYS = """API keys are made with docchat keys create NAME. A key made with --scope chat can
only ask questions. Keys are stored as salted hashes; the key itself is shown once."""

HITS = [
    Hit("install", INSTALL, 0.6, {"source": "docs/getting-started.md"}),
    Hit("keys", KEYS, 0.5, {"source": "docs/api-keys.md"}),
]


def test_each_sentence_gets_the_sentence_it_rests_on(models: Models) -> None:
    answer = (
        "Run make serve to start the server without ingesting. "
        "A key made with --scope chat can only ask questions."
    )
    found = sentence_support(answer, HITS, models.embedder.embed)
    assert [s.sentence for s in found] == [
        "Run make serve to start the server without ingesting.",
        "A key made with --scope chat can only ask questions.",
    ]
    first, second = found
    assert first.supported
    assert second.supported
    assert first.source == "docs/getting-started.md"
    assert "make serve starts the server without ingesting" in first.passage_sentence
    assert second.source == "docs/api-keys.md"
    assert second.passage_sentence.startswith("A key made with --scope chat")


def test_a_sentence_the_passages_do_not_hold_is_marked(models: Models) -> None:
    answer = (
        "make clean removes the virtual environment and caches. "
        "Docchat ships a mobile app for iPhone with offline voice input."
    )
    kept, invented = sentence_support(answer, HITS, models.embedder.embed)
    assert kept.supported
    assert not invented.supported
    assert invented.score < kept.score
    assert invented.as_dict()["supported"] is False


def test_no_passage_no_support(models: Models) -> None:
    found = sentence_support("Run make run.", [], models.embedder.embed)
    assert [(s.supported, s.passage_sentence) for s in found] == [(False, "")]
    assert sentence_support("", HITS, models.embedder.embed) == []


def test_the_service_returns_support_with_its_checks(components: Components) -> None:
    chat = components.chat
    answer = "make serve starts the server without ingesting."
    checks = asyncio.run(chat.check_grounding(answer, HITS, "How do I start without ingesting?"))
    assert checks.support is not None
    (item,) = checks.support
    assert item["sentence"] == answer
    assert item["source"] == "docs/getting-started.md"
    assert item["supported"] is True
    assert "support" in checks.as_dict()
    off = chat.rag.model_copy(update={"sentence_support": False})
    chat.rag, before = off, chat.rag
    try:
        checks = asyncio.run(chat.check_grounding(answer, HITS, "How?"))
    finally:
        chat.rag = before
    assert checks.support is None
