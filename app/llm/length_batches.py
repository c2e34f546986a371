"""Batches of texts of similar length in tokens, for the embedders.

A batch is padded to its longest text, so every text in it costs that length (and
attention its square). Sorting by characters, as sentence-transformers does, groups
texts badly where characters and tokens part ways (markup, code, tables): on 2,972
chunks of the PostgreSQL manual, batches of 32 sorted by characters held 26% padding
(47% of attention); sorted by tokens, 6-10%. The vectors are the same but for the float
rounding of a different batch (docs/performance.md, "Batches by tokens").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def token_lengths(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[int]:
    """Each text's length as the model reads it: special tokens in, truncated. Called
    with the truncation the model's own batches use (a fast tokenizer switched between
    settings while another thread encodes with it fails: tokenizers#537)."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    return [len(ids) for ids in encoded]


def batches(tokenizer: Any, texts: Sequence[str], max_length: int, size: int) -> list[list[int]]:
    """The texts' indices in batches of `size` by their length in tokens; one batch,
    uncounted, when they fit in one (a question, a few sentences)."""
    if len(texts) <= size:
        return [list(range(len(texts)))]
    return by_length(token_lengths(tokenizer, texts, max_length), size)


def by_length(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """The texts' indices in batches of `batch_size`, longest first."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
