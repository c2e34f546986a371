"""The chat model's own confidence in an answer, from the probabilities it gave the
tokens it wrote.

A small model that invents ("use the `--chunks` setting") picks its words with less
certainty than one that quotes its passages: measured on the hand-labelled answers
(docs/answer-quality.md), the mean log-probability of the answer's tokens separates
wrong answers from right ones better than any check on the text. The confidence shown
is its exponent, the geometric mean of the tokens' probabilities (0 to 1).

How confident is confident enough depends on the model: the floor is measured for each
catalog model on the labels (`CatalogModel.confidence_floor`) and applies only to that
very file; any other model gets none until `rag.min_confidence` sets one.
"""

from __future__ import annotations

import math
from typing import Literal

from app.llm.catalog import measured_floor


def confidence(logprobs: list[float]) -> float | None:
    """exp(mean log-probability) of the answer's tokens; None without tokens (a remote
    engine does not report them)."""
    if not logprobs:
        return None
    return math.exp(sum(logprobs) / len(logprobs))


def confidence_floor(
    setting: float | Literal["auto"] | None, model_sha256: str | None
) -> float | None:
    """The confidence below which an answer is flagged (rag.min_confidence)."""
    return measured_floor(setting, model_sha256, "confidence_floor")
