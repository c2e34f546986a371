"""Answer evaluation: every question through the chat service, as the API asks it, and
what came back judged against what the case expects.

Per question: whether the answer holds the expected phrases, was judged grounded,
cites an expected source, was a refusal, and what it cost (time to the first token and
to the end as a user waits for them, tokens). Overall: the shares of those, with
in-scope and out-of-scope questions kept apart (an out-of-scope question must be
refused; an in-scope one must not), and latency percentiles.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from app.chat.events import Failed, Finished, Token
from app.chat.question import Question
from app.chat.service import UNGROUNDED_ANSWER, ChatService
from app.evaluation.cases import QACase, contains_expected, source_matches
from app.evaluation.labels import label_agreement
from app.rag.prompt import NO_CONTEXT_ANSWER
from app.rag.scope import NOT_COVERED

# How a model says the documentation does not cover a question, in its own words.
REFUSAL = NOT_COVERED


@dataclass
class AnswerResult:
    """One question's answer and how it was judged."""

    question: str
    out_of_scope: bool
    answer: str = ""
    refused: bool = False
    contains_expected: bool | None = None
    cites_expected_source: bool | None = None
    grounded: bool | None = None
    grounding_score: float | None = None
    verdict: str = ""
    first_token_s: float | None = None
    total_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    error: str | None = None


@dataclass
class AnswerReport:
    """The shares and percentiles over a question set, and every result."""

    model: str = ""
    model_sha256: str | None = None
    questions: int = 0
    in_scope: int = 0
    out_of_scope: int = 0
    # Over in-scope questions (a refusal or an error counts against each).
    expected: float = 0.0  # the answer holds what the case expects
    grounded: float = 0.0  # judged grounded in its passages
    cited: float = 0.0  # an expected source is among the citations
    false_refusals: float = 0.0  # refused although the docs cover it
    # Over out-of-scope questions.
    refused_out_of_scope: float = 0.0
    errors: int = 0
    first_token_p50_s: float = 0.0
    first_token_p95_s: float = 0.0
    total_p50_s: float = 0.0
    total_p95_s: float = 0.0
    completion_tokens_mean: float = 0.0
    prompt_tokens_mean: float = 0.0
    # The grounding check on the set's hand-labelled answers (app/evaluation/labels.py):
    # the share of wrong ones it flags and of right ones (None: the set has no labels).
    labelled: int = 0
    labels_wrong_flagged: float | None = None
    labels_right_flagged: float | None = None
    labels_self_checked: int = 0  # of those, the ones the model in service was asked about
    results: list[AnswerResult] = field(default_factory=list)

    def as_dict(self, *, with_results: bool = True) -> dict[str, Any]:
        """The report as JSON-ready data."""
        data = asdict(self)
        if not with_results:
            data.pop("results")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerReport:
        """A report read back (from the model registry)."""
        results = [AnswerResult(**r) for r in data.get("results", [])]
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["results"] = results
        return cls(**fields)


def is_refusal(done: Finished) -> bool:
    """Whether the answer declines: nothing retrieved, a notice in its place, or the
    model saying the docs do not cover it."""
    if not done.answered_from_docs or done.text == NO_CONTEXT_ANSWER:
        return True
    if done.notice == UNGROUNDED_ANSWER:
        return True
    if done.checks.replaced_by == "passage":
        return False  # the docs' own words stand in for the answer: judged as one
    return REFUSAL.search(done.text) is not None


async def answer_case(chat: ChatService, case: QACase) -> AnswerResult:
    """Ask one question as the API does (not stored) and judge what comes back."""
    result = AnswerResult(case.question, case.out_of_scope)
    started = time.perf_counter()
    try:
        answer = await chat.open(Question(case.question, store=False))
        async for event in answer.events():
            if isinstance(event, Token) and result.first_token_s is None:
                result.first_token_s = time.perf_counter() - started
            elif isinstance(event, Failed):
                result.error = f"{event.error.code}: {event.error}"
            elif isinstance(event, Finished):
                judge(result, case, event)
    except Exception as exc:  # refused before the answer started (e.g. prompt too long)
        result.error = f"{type(exc).__name__}: {exc}"
    result.total_s = time.perf_counter() - started
    return result


def judge(result: AnswerResult, case: QACase, done: Finished) -> None:
    """Fill in the verdicts of one finished answer."""
    result.answer = done.text
    result.refused = is_refusal(done)
    result.verdict = done.verdict
    result.grounded = done.checks.grounded
    result.grounding_score = done.checks.grounding_score
    result.prompt_tokens = done.usage.prompt_tokens
    result.completion_tokens = done.usage.completion_tokens
    result.finish_reason = done.finish_reason
    if not case.out_of_scope:
        result.contains_expected = False if result.refused else contains_expected(case, done.text)
        cited = [c.source for c in done.citations]
        result.cites_expected_source = any(source_matches(s, case.sources) for s in cited)


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of them fall (nearest rank; 0.0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def summarize(results: list[AnswerResult], model: str, model_sha256: str | None) -> AnswerReport:
    """The report over all results."""
    inside = [r for r in results if not r.out_of_scope]
    outside = [r for r in results if r.out_of_scope]

    def share(rows: list[AnswerResult], test: Callable[[AnswerResult], bool]) -> float:
        return round(sum(1 for r in rows if test(r)) / len(rows), 4) if rows else 0.0

    judged = [r for r in inside if r.contains_expected is not None]
    firsts = [r.first_token_s for r in results if r.first_token_s is not None]
    totals = [r.total_s for r in results]
    answered = [r for r in results if r.error is None]
    return AnswerReport(
        model=model,
        model_sha256=model_sha256,
        questions=len(results),
        in_scope=len(inside),
        out_of_scope=len(outside),
        expected=share(judged, lambda r: bool(r.contains_expected)),
        grounded=share(inside, lambda r: r.grounded is True and not r.refused),
        cited=share(inside, lambda r: bool(r.cites_expected_source)),
        false_refusals=share(inside, lambda r: r.refused),
        refused_out_of_scope=share(outside, lambda r: r.refused),
        errors=sum(1 for r in results if r.error is not None),
        first_token_p50_s=round(percentile(firsts, 0.5), 3),
        first_token_p95_s=round(percentile(firsts, 0.95), 3),
        total_p50_s=round(percentile(totals, 0.5), 3),
        total_p95_s=round(percentile(totals, 0.95), 3),
        completion_tokens_mean=round(
            statistics.fmean([r.completion_tokens for r in answered]) if answered else 0.0, 1
        ),
        prompt_tokens_mean=round(
            statistics.fmean([r.prompt_tokens for r in answered]) if answered else 0.0, 1
        ),
        results=results,
    )


async def evaluate_answers(
    chat: ChatService,
    cases: list[QACase],
    *,
    progress: Callable[[AnswerResult], None] | None = None,
    labels_of: Path | None = None,
) -> AnswerReport:
    """Every case in turn, one at a time (as one user asks), then the report; with
    `labels_of` (the set's file), the check's agreement with the set's hand labels."""
    results = []
    for case in cases:
        result = await answer_case(chat, case)
        results.append(result)
        if progress is not None:
            progress(result)
    engine = chat.engine
    report = summarize(results, engine.model_id, getattr(engine, "model_sha256", None))
    agreement = await label_agreement(chat, labels_of) if labels_of is not None else None
    return replace(report, **agreement) if agreement else report
