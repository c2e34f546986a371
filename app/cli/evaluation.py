"""`docchat eval`: measure retrieval quality against question sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import console, fail, load, say

app = typer.Typer(no_args_is_help=True)


@app.command("retrieval")
def eval_retrieval(
    qa_file: Annotated[Path, typer.Argument(help="JSONL of {question, sources}.")],
    k: Annotated[int, typer.Option(help="Documents considered per question.")] = 5,
    collection: Annotated[str | None, typer.Option(help="Collection to search.")] = None,
    verbose: Annotated[bool, typer.Option(help="List the questions that missed.")] = False,
) -> None:
    """Print recall@k and MRR of retrieval for questions with known source files.

    Example: docchat eval retrieval eval/python311_qa.jsonl --collection python311
    """
    from app.components import load_embedder, open_vectors
    from app.rag.evaluation import evaluate_retrieval, read_qa_file
    from app.rag.retrieval import Retriever
    from app.store.vectors import VectorStoreBusy

    settings = load()
    try:
        cases = read_qa_file(qa_file)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    try:
        vectors = open_vectors(settings, writer=False)
    except VectorStoreBusy as exc:
        raise fail(str(exc)) from None
    try:
        target = collection or settings.vectors.collection
        if vectors.count(target) == 0:
            raise fail(f"collection {target!r} is empty: ingest the documents first")
        retriever = Retriever(load_embedder(settings), vectors, target, top_k=k, min_score=-1.0)
        report = evaluate_retrieval(retriever, cases, k=k)
    finally:
        vectors.close()
    console.print(
        f"questions: {report.questions}  recall@{k}: {report.recall:.3f}  "
        f"MRR@{k}: {report.mrr:.3f}  recall@1: {report.recall_at_1:.3f}",
        highlight=False,
    )
    if verbose:
        for miss in report.misses:
            say(f"  miss: {miss['question']} -> got {miss['got']}")
