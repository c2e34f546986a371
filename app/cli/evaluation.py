"""`docchat eval`: measure answers and retrieval against question sets."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from app.cli.common import console, err, fail, load, say

if TYPE_CHECKING:  # the commands' own imports wait until they run: --help stays fast
    from app.evaluation.cases import QACase
    from app.evaluation.thresholds import Limit

app = typer.Typer(no_args_is_help=True)

EXIT_BELOW = 4  # the run worked, but a --min/--max threshold was not met


def cases_of(qa_file: Path) -> list[QACase]:
    """The question set, or a clear error."""
    from app.evaluation.cases import read_cases

    try:
        return read_cases(qa_file)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None


def check(report: dict[str, Any], limits: list[Limit]) -> None:
    """Exit EXIT_BELOW, naming each limit missed, when the report misses any."""
    from app.evaluation.thresholds import failures

    missed = failures(report, [limit for limit in limits if limit.minimum or limit.maximum])
    for line in missed:
        err.print(f"threshold missed: {line}", markup=False, highlight=False)
    if missed:
        raise typer.Exit(EXIT_BELOW)


@app.command("retrieval")
def eval_retrieval(
    qa_file: Annotated[Path, typer.Argument(help="JSONL of {question, sources, ...}.")],
    k: Annotated[int, typer.Option(help="Documents considered per question.")] = 5,
    collection: Annotated[str | None, typer.Option(help="Collection to search.")] = None,
    verbose: Annotated[bool, typer.Option(help="List the questions that missed.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    min_recall: Annotated[float | None, typer.Option(help="Exit 4 below this recall@k.")] = None,
    min_mrr: Annotated[float | None, typer.Option(help="Exit 4 below this MRR@k.")] = None,
) -> None:
    """Recall@k and MRR of retrieval on a question set.

    Recall@k and MRR of retrieval for questions with known source files (out-of-scope
    questions are left out).

    Example: docchat eval retrieval eval/python311_qa.jsonl --collection python311
    """
    from app.components import load_embedder, open_vectors
    from app.evaluation.retrieval import evaluate_retrieval
    from app.evaluation.thresholds import Limit
    from app.rag.retrieval import Retriever
    from app.store.db import open_database
    from app.store.index_record import EmbeddingMismatch
    from app.store.vectors import VectorStoreBusy

    settings = load()
    cases = cases_of(qa_file)
    try:
        vectors = open_vectors(settings, writer=False)
    except VectorStoreBusy as exc:
        raise fail(str(exc)) from None
    try:
        target = collection or settings.vectors.collection
        if vectors.count(target) == 0:
            raise fail(f"collection {target!r} is empty: ingest the documents first")
        db = open_database(settings)
        try:
            retriever = Retriever.configured(
                settings.rag, load_embedder(settings), vectors, db, target, data_dir=None
            )
            report = evaluate_retrieval(retriever, cases, k=k)
        finally:
            db.close()
    except EmbeddingMismatch as exc:
        raise fail(str(exc)) from None
    finally:
        vectors.close()
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        say(
            f"questions: {report.questions}  recall@{k}: {report.recall:.3f}  "
            f"MRR@{k}: {report.mrr:.3f}  recall@1: {report.recall_at_1:.3f}"
        )
        if report.answer_in_prompt is not None and report.context_chars is not None:
            say(
                f"answer in prompt: {report.answer_in_prompt:.3f}  "
                f"context: {report.context_chars:,.0f} characters on average "
                f"(rag.retrieval={settings.rag.retrieval}, "
                f"rag.context_tokens={settings.rag.context_tokens})"
            )
        if verbose:
            for miss in report.misses:
                say(f"  miss: {miss['question']} -> got {miss['got']}")
    check(report.as_dict(), [Limit("recall", min_recall), Limit("mrr", min_mrr)])


@app.command("answers")
def eval_answers(
    qa_file: Annotated[Path, typer.Argument(help="JSONL of answer cases (eval/README.md).")],
    collection: Annotated[str | None, typer.Option(help="Collection to answer from.")] = None,
    model: Annotated[
        str | None, typer.Option(help="A registered model to evaluate (default: the active).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.", min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    min_expected: Annotated[
        float | None, typer.Option(help="Exit 4 below this share of expected answers.")
    ] = None,
    min_grounded: Annotated[
        float | None, typer.Option(help="Exit 4 below this share of grounded answers.")
    ] = None,
    min_cited: Annotated[
        float | None, typer.Option(help="Exit 4 below this share citing an expected source.")
    ] = None,
    max_false_refusals: Annotated[
        float | None, typer.Option(help="Exit 4 above this share of in-scope refusals.")
    ] = None,
    min_refused_out_of_scope: Annotated[
        float | None, typer.Option(help="Exit 4 below this share of out-of-scope refusals.")
    ] = None,
    max_p95_s: Annotated[
        float | None, typer.Option(help="Exit 4 above this p95 time per answer (seconds).")
    ] = None,
) -> None:
    """Ask a question set through the API's own path and judge the answers.

    Ask every question through the same path as the API and judge the answers: the
    share holding the expected phrases, grounded, citing an expected source, refusals
    where the docs cover it and answers where they do not; times and tokens.

    Example: docchat eval answers eval/docs_qa.jsonl --min-expected 0.5 --json
    """
    from app.components import build_components, load_model
    from app.evaluation.answers import evaluate_answers
    from app.evaluation.thresholds import Limit
    from app.llm.base import CannotChat
    from app.releases.errors import RegistryError
    from app.releases.registry import Registry
    from app.security.secrets import ConfigError
    from app.store.vectors import VectorStoreBusy

    overrides = {"vectors": {"collection": collection}} if collection else {}
    settings = load(**overrides)
    cases = cases_of(qa_file)[:limit]
    try:
        opened = build_components(settings, writer=False)
    except (VectorStoreBusy, ConfigError, RegistryError, CannotChat) as exc:
        raise fail(str(exc)) from None
    try:
        target = settings.vectors.collection
        if opened.vectors.count(target) == 0:
            raise fail(f"collection {target!r} is empty: ingest the documents first")
        # The evaluation canary: two runs of one release give the same greedy answers.
        components = opened.evaluating()
        if model is not None:
            try:
                entry = Registry(opened.db).model(model)
                components = components.using(engine=load_model(settings, entry))
            except (RegistryError, CannotChat) as exc:
                raise fail(str(exc)) from None
        components.warm()
        with answer_bar(len(cases)) as advance:
            report = asyncio.run(
                evaluate_answers(components.chat, cases, progress=advance, labels_of=qa_file)
            )
        if model is not None:
            components.engine.close()
    finally:
        opened.close()
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        print_answers(report)
    check(
        report.as_dict(with_results=False),
        [
            Limit("expected", min_expected),
            Limit("grounded", min_grounded),
            Limit("cited", min_cited),
            Limit("false_refusals", maximum=max_false_refusals),
            Limit("refused_out_of_scope", min_refused_out_of_scope),
            Limit("total_p95_s", maximum=max_p95_s),
        ],
    )


@contextmanager
def answer_bar(total: int) -> Iterator[Callable[[Any], None]]:
    """Questions answered of all, on stderr; yields the callback that advances it."""
    with Progress(
        TextColumn("asking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    ) as bar:
        task = bar.add_task("asking", total=total)
        yield lambda _result: bar.advance(task)


def print_answers(report: Any) -> None:
    """Each question's verdicts, then the shares, times and tokens."""
    table = Table(title=f"Answers of {report.model}")
    for column in ("question", "expected", "grounded", "cited", "refused", "s"):
        table.add_column(column)

    def mark(value: bool | None) -> str:
        return "-" if value is None else ("yes" if value else "NO")

    for r in report.results:
        scope = " (out of scope)" if r.out_of_scope else ""
        table.add_row(
            Text(r.question[:70] + scope),
            mark(r.contains_expected),
            mark(r.grounded),
            mark(r.cites_expected_source),
            ("yes" if r.refused else "no") + (" ERROR" if r.error else ""),
            f"{r.total_s:.1f}",
        )
    console.print(table)
    say(
        f"in scope {report.in_scope}: expected {report.expected:.2f}  grounded "
        f"{report.grounded:.2f}  cited {report.cited:.2f}  false refusals "
        f"{report.false_refusals:.2f}"
    )
    say(f"out of scope {report.out_of_scope}: refused {report.refused_out_of_scope:.2f}")
    if report.labelled:
        say(
            f"grounding check on {report.labelled} hand-labelled answers: wrong flagged "
            f"{report.labels_wrong_flagged}  right flagged {report.labels_right_flagged}"
            f"  (the model asked of {report.labels_self_checked})"
        )
    say(
        f"first token p50 {report.first_token_p50_s:.2f} s  p95 {report.first_token_p95_s:.2f} s"
        f"   whole answer p50 {report.total_p50_s:.2f} s  p95 {report.total_p95_s:.2f} s"
    )
    say(
        f"tokens per answer: {report.completion_tokens_mean:.0f} written, "
        f"{report.prompt_tokens_mean:.0f} in the prompt; errors {report.errors}"
    )
