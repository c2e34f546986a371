"""How the gate measures a release: the shapes of its measurements, and the one that
asks a gate set's questions through a chat service over the set's collection.

The gate is handed its measurements by the composition root, which knows how to load
a release and which stores to answer from; the held-out split (fine-tuning's) comes the
same way, so this package needs nothing above it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from app.evaluation.answers import AnswerResult, evaluate_answers
from app.evaluation.cases import read_cases
from app.evaluation.retrieval import evaluate_retrieval
from app.llm.base import ChatEngine
from app.releases.entries import AdapterEntry, ModelEntry
from app.releases.errors import RegistryError
from app.settings import GateSet, Settings

# A release measured on one gate set: the set's file, collection and figures.
Measure = Callable[[ModelEntry, GateSet, Callable[[AnswerResult], None]], dict[str, Any]]
# Chat rows of an adapter's dataset held out from training, as messages.
Rows = list[list[dict[str, str]]]
# A release (an adapter on its base, or the base alone) measured on held-out rows.
HeldOut = Callable[[ModelEntry, Rows], dict[str, Any]]
# The held-out rows of the dataset an adapter was trained on.
HeldOutRows = Callable[[AdapterEntry], Rows]


class Answering(Protocol):
    """What a measurement answers with: the stores and the chat service of a
    deployment (app.components.Components)."""

    @property
    def vectors(self) -> Any: ...

    @property
    def chat(self) -> Any: ...


def measure_with(
    settings: Settings,
    open_engine: Callable[[ModelEntry], ChatEngine],
    answering: Callable[[ChatEngine, str], Answering],
) -> Measure:
    """A `Measure` that loads the release, asks a set's questions through a chat
    service over the set's collection, and runs the retrieval evaluation on the same
    set."""

    def measure(
        release: ModelEntry, gate_set: GateSet, progress: Callable[[AnswerResult], None]
    ) -> dict[str, Any]:
        cases = read_cases(gate_set.file)
        collection = gate_set.collection or settings.vectors.collection
        engine = open_engine(release)
        try:
            parts = answering(engine, collection)
            if parts.vectors.count(collection) == 0:
                raise RegistryError(
                    f"collection {collection!r} is empty: ingest its documents before "
                    f"evaluating on {gate_set.file}"
                )
            answers = asyncio.run(
                evaluate_answers(parts.chat, cases, progress=progress, labels_of=gate_set.file)
            )
            retrieval = evaluate_retrieval(parts.chat.retriever, cases, k=5)
        finally:
            engine.close()
        return {
            "file": str(gate_set.file),
            "collection": collection,
            "answers": answers.as_dict(),
            "retrieval": retrieval.as_dict(),
        }

    return measure
