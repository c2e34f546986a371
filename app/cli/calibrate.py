"""`docchat calibrate`: the score below which a collection's docs do not cover a question."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.common import fail, load, say

if TYPE_CHECKING:  # the command's own imports wait until it runs: --help stays fast
    from app.llm.embedder import Embedder
    from app.settings import Settings
    from app.store.db import Database
    from app.store.vectors import VectorStore


def calibrate(
    collection: Annotated[
        str | None, typer.Option(help="Collection to calibrate (default: vectors.collection).")
    ] = None,
    questions: Annotated[
        Path | None,
        typer.Option(
            help="A question set of this collection (JSONL, eval/README.md); without one, "
            "the list of unrelated questions docchat ships."
        ),
    ] = None,
    max_false_refusals: Annotated[
        float,
        typer.Option(
            min=0.0, max=0.5, help="Share of the set's in-scope questions the threshold may refuse."
        ),
    ] = 0.05,
    dry_run: Annotated[bool, typer.Option(help="Show the calibration; store nothing.")] = False,
) -> None:
    """Calibrate when a question counts as one the docs do not cover.

    Calibrate the score below which a question counts as one the collection's docs do not
    cover (rag.scope=calibrated): from a question set, the threshold that refuses at most
    --max-false-refusals of its in-scope questions; without one, the score no question of
    a list of unrelated ones (HR, IT, other products, everyday life) reaches on this
    collection. Stored with the collection; `docchat ingest` renews the second kind after
    every run and keeps the first.

    Example: docchat calibrate --collection git --questions eval/git_qa.jsonl
    """
    from app.components import load_embedder, open_database, open_vectors
    from app.evaluation.cases import read_cases
    from app.rag.retrieval import Retriever

    settings = load()
    target = collection or settings.vectors.collection
    pairs: list[tuple[str, bool]] = []
    if questions is not None:
        try:
            pairs = [(c.question, c.out_of_scope) for c in read_cases(questions)]
        except (OSError, ValueError) as exc:
            raise fail(str(exc)) from None
        if all(outside for _, outside in pairs):
            raise fail(f"{questions}: no in-scope questions to calibrate on")
    vectors = open_vectors(settings, writer=not dry_run)
    try:
        if vectors.target(target).count == 0:  # (a missing one is not created)
            raise fail(f"collection {target!r} is empty: ingest the documents first")
        db = open_database(settings)
        try:
            retriever = Retriever.configured(
                settings.rag, load_embedder(settings), vectors, db, target, data_dir=None
            )
            calibration = retriever.calibrate(
                pairs, basis=str(questions or ""), max_false_refusals=max_false_refusals
            )
            if not dry_run:
                retriever.save_calibration(calibration)
        finally:
            db.close()
    finally:
        vectors.close()
    say(f"{target}: {calibration.describe()}")
    if calibration.method == "questions":
        outside = (
            f", out-of-scope questions refused {calibration.refused_out_of_scope:.2f}"
            if calibration.refused_out_of_scope is not None
            else ""
        )
        say(
            f"on the set's own questions: in-scope refused {calibration.false_refusals:.2f}"
            f"{outside} (the same questions it was calibrated on: measure on others)"
        )
    if dry_run:
        say("dry run: nothing stored")
    elif settings.rag.scope != "calibrated":
        say("stored; rag.scope=min_score ignores it (set rag.scope=calibrated to use it)")


def calibrate_after_ingest(
    settings: Settings, vectors: VectorStore, db: Database, target: str, embedder: Embedder
) -> str | None:
    """After an ingest: the collection calibrated anew from the off-topic list, unless it
    holds a calibration from a question set (kept); one line saying which (None for an
    empty collection)."""
    from app.rag.retrieval import Retriever

    if vectors.target(target).count == 0:
        return None
    retriever = Retriever.configured(settings.rag, embedder, vectors, db, target, data_dir=None)
    current = retriever.calibration()
    if current is not None and current.method == "questions":
        return f"kept {current.describe()}; renew it with docchat calibrate --questions FILE"
    calibration = retriever.calibrate()
    retriever.save_calibration(calibration)
    return calibration.describe()
