"""One answer's checks embed each distinct text once: the paraphrase check, the
grounding score and the sentence support all read the answer's sentences, with the real
embedding model and the real chat model."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from app.chat.events import Finished, Token
from app.chat.question import Question
from app.components import Components
from app.rag.embedding_memo import EmbeddingMemo
from tests.conftest import Models


def test_the_memo_gives_the_embedders_vectors_and_embeds_each_text_once(models: Models) -> None:
    asked: list[list[str]] = []

    def counted(texts: list[str]) -> list[list[float]]:
        asked.append(list(texts))
        return models.embedder.embed(texts)

    memo = EmbeddingMemo(counted)
    texts = ["Run make run.", "Keys are hashed.", "Run make run."]
    first = memo(texts)
    again = memo(["Keys are hashed.", "make clean removes caches."])
    assert asked == [["Run make run.", "Keys are hashed."], ["make clean removes caches."]]
    direct = models.embedder.embed([*texts, "make clean removes caches."])
    assert np.allclose(first, direct[:3], atol=1e-5)
    assert np.allclose(again, [direct[1], direct[3]], atol=1e-5)
    assert memo([]) == []


def test_an_answers_checks_embed_each_sentence_once(
    components: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = components.chat.retriever.embedder
    embedded: list[str] = []
    answering = False
    real = embedder.embed

    def recorded(texts: list[str]) -> list[list[float]]:
        if answering:  # the checks, after the last token (not the question's retrieval)
            embedded.extend(texts)
        return real(texts)

    monkeypatch.setattr(embedder, "embed", recorded)

    async def ask() -> Finished:
        nonlocal answering
        answer = await components.chat.open(
            Question("How do I rotate the widget server's logs?", store=False)
        )
        done = None
        async for event in answer.events():
            if isinstance(event, Token):
                answering = True
            elif isinstance(event, Finished):
                done = event
        assert done is not None
        return done

    done = asyncio.run(ask())
    assert done.checks.grounding_score is not None  # the checks ran, and embedded
    assert embedded
    repeated = {t for t in embedded if embedded.count(t) > 1}
    assert not repeated, repeated
