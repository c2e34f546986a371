"""The chat model's own confidence in an answer, from the probabilities it gave the
tokens it wrote.

A small model that invents picks its words with less certainty, on average, than one
that quotes its passages: on the hand-labelled answers (docs/answer-quality.md) a
wrong answer scores below a right one in 68-74% of pairs, but right answers spread as
low ("No."). With every set labelled whole, a floor of 0.72 for the default model
flags wrong answers the other checks pass at the cost of more right ones, which give
way to their passage (that holds the expected phrase as often). The confidence is the
exponent of the mean log-probability of the answer's tokens, their geometric mean
probability (0 to 1).

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
