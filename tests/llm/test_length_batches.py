"""Batches by length in tokens: the embedders' vectors come back in the callers' order
and equal to each text embedded alone, and texts whose characters and tokens disagree
are batched by tokens. The real embedding model."""

from __future__ import annotations

import numpy as np
import pytest

from app.llm.embedder import Embedder
from app.llm.length_batches import by_length, token_lengths
from app.llm.provision import default_embedding_model
from tests.conftest import Models

# Characters and tokens part ways: a row of symbols is one token per character, a
# sentence of common words about one per five; a long text is cut at the model's window.
SYMBOLS = "|-+-|" * 40  # 200 characters, ~200 tokens
WORDS = "the server starts on the port it is given " * 6  # ~250 characters, ~55 tokens
TEXTS = [WORDS, SYMBOLS, "short", WORDS + WORDS, "word " * 600, SYMBOLS[:50], "a b c"]


def test_batches_are_by_tokens_longest_first(models: Models) -> None:
    tokenizer = models.embedder._model.tokenizer
    window = models.embedder.max_tokens
    lengths = token_lengths(tokenizer, TEXTS, window)
    assert max(lengths) == window  # cut where the model cuts, specials counted
    assert lengths[1] > lengths[0]  # fewer characters, more tokens
    batches = by_length(lengths, 3)
    assert sorted(i for b in batches for i in b) == list(range(len(TEXTS)))
    assert [len(b) for b in batches] == [3, 3, 1]
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths, reverse=True)
    assert 1 in batches[0]  # the row of symbols goes with the long ones
    assert 0 not in batches[0]


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_vectors_come_back_in_order_and_as_alone(backend: str, models: Models) -> None:
    embedder = Embedder(default_embedding_model(), backend=backend, precision="fp32")
    embedder.batch_size = 2  # several batches, reordered
    together = np.array(embedder.embed(TEXTS))
    alone = np.array([models.embedder.embed([t])[0] for t in TEXTS])
    cosines = (together * alone).sum(axis=1)
    assert cosines.min() >= 1 - 1e-5, cosines
