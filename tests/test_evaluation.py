"""The judging of the evaluations: cases, phrases, refusals, shares and percentiles
(the model-driven runs are in tests/test_cli.py and tests/llm/test_models.py)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from app.chat.events import AnswerChecks, Finished, Release, Usage
from app.chat.service import ChatService
from app.components import Components
from app.evaluation.answers import (
    AnswerReport,
    AnswerResult,
    evaluate_answers,
    is_refusal,
    percentile,
    summarize,
)
from app.evaluation.cases import QACase, contains_expected, read_cases
from app.evaluation.labels import label_agreement, read_labels
from app.evaluation.thresholds import regressions
from app.rag.prompt import NO_CONTEXT_ANSWER
from app.rag.scope import names

EVAL = Path(__file__).parents[1] / "eval"


def finished(text: str, *, from_docs: bool = True, **checks: object) -> Finished:
    return Finished(
        text=text,
        notice=None,
        citations=[],
        answered_from_docs=from_docs,
        checks=AnswerChecks(**checks),  # type: ignore[arg-type]
        usage=Usage(),
        finish_reason="stop",
        release=Release("m"),
    )


def test_phrases_match_whatever_the_case_quotes_and_spacing() -> None:
    case = QACase("q", ("a.md",), expect_any=("docchat keys create",), expect_all=("--scope",))
    assert contains_expected(case, "Run `docchat  KEYS create --scope chat`.")
    assert not contains_expected(case, "Run docchat keys create.")  # --scope is missing
    smart = QACase("q", ("a.md",), expect_any=('it\'s "on"',))
    assert contains_expected(smart, "It\u2019s \u201con\u201d by default.")
    assert contains_expected(QACase("q", ("a.md",)), "anything") is None


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("The documentation does not cover how to do that.", True),
        ("The excerpts don't mention a hotline.", True),
        ("I don't know.", True),
        ("There is no information about pricing in the docs.", True),
        ("Run `docchat keys create --name bot --scope chat` [1].", False),
        ("It does not matter which port you pick; the default is 8000.", False),
    ],
)
def test_refusals_in_the_models_own_words(text: str, refused: bool) -> None:
    assert is_refusal(finished(text)) is refused


def test_nothing_retrieved_is_a_refusal_and_a_passage_is_not() -> None:
    assert is_refusal(finished(NO_CONTEXT_ANSWER, from_docs=False))
    passage = finished(
        "The documentation does not say this in so many words: > …",
        grounded=False,
        replaced_by="passage",
    )
    assert not is_refusal(passage)


def test_shares_keep_in_scope_and_out_of_scope_apart() -> None:
    results = [
        AnswerResult(
            "a",
            False,
            refused=False,
            contains_expected=True,
            grounded=True,
            cites_expected_source=True,
            total_s=2.0,
            first_token_s=1.0,
        ),
        AnswerResult(
            "b",
            False,
            refused=True,
            contains_expected=False,
            grounded=None,
            cites_expected_source=True,
            total_s=4.0,
            first_token_s=2.0,
        ),
        AnswerResult("c", True, refused=True, total_s=1.0, first_token_s=0.5),
        AnswerResult("d", True, refused=False, total_s=3.0, first_token_s=1.5),
    ]
    report = summarize(results, "m", None)
    assert (report.in_scope, report.out_of_scope) == (2, 2)
    assert report.expected == 0.5
    assert report.grounded == 0.5
    assert report.cited == 1.0
    assert report.false_refusals == 0.5
    assert report.refused_out_of_scope == 0.5
    assert report.total_p50_s == 2.0
    assert report.total_p95_s == 4.0
    again = type(report).from_dict(json.loads(json.dumps(report.as_dict())))
    assert again == report


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 0.5) == 10.0
    assert percentile(values, 0.95) == 19.0
    assert percentile([], 0.95) == 0.0


def test_the_shipped_question_sets_read_cleanly() -> None:
    docs = read_cases(EVAL / "docs_qa.jsonl")
    assert len(docs) >= 30
    assert sum(c.out_of_scope for c in docs) >= 5
    assert all(c.has_expectations for c in docs if not c.out_of_scope)
    for name in ("python311_qa.jsonl", "git_qa.jsonl"):
        cases = read_cases(EVAL / name)
        assert all(c.has_expectations and c.sources for c in cases if not c.out_of_scope)
        # Enough out-of-scope questions to measure a 90% refusal rate (issue 23).
        assert sum(c.out_of_scope for c in cases) >= 15
        assert all(not c.sources and not c.has_expectations for c in cases if c.out_of_scope)


# Names of docs_qa's out-of-scope questions that docchat's docs use for reasons of their
# own: CSV exports, version numbers, an OpenID provider, office files, IT help.
DOCS_NAME_THESE = {"CSV", "2.0", "Okta", "Excel", "IT"}


def test_docchat_s_docs_do_not_name_what_its_out_of_scope_questions_ask_about() -> None:
    # docs_qa is asked of docchat's own docs/, which `make run` also serves. A page that
    # quotes an out-of-scope question or a model's invented answer to it ("Is docchat
    # SOC 2 certified?") makes its names known to the collection, so the scope decision
    # lets the question through and the quote becomes a passage to answer from (that
    # happened: 12 of 18 refused instead of 14). The docs describe such questions.
    docs = "\n".join(p.read_text() for p in sorted((EVAL.parent / "docs").rglob("*.md")))
    named = {
        name
        for case in read_cases(EVAL / "docs_qa.jsonl")
        if case.out_of_scope
        for name in names(case.question)
        if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", docs)
    }
    assert named <= DOCS_NAME_THESE


def test_a_malformed_case_names_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"question": "ok", "sources": ["a.md"]}\n{"question": "no sources"}\n')
    with pytest.raises(ValueError, match=r"qa.jsonl:2: .*sources"):
        read_cases(bad)


def test_the_gate_refuses_a_check_that_got_worse_on_the_labels() -> None:
    """labels_wrong_flagged may not fall, nor labels_right_flagged rise, past the
    tolerance; a report recorded before the figures existed is not compared on them."""
    before = {"labels_wrong_flagged": 0.8, "labels_right_flagged": 0.1}
    worse = regressions(
        {"labels_wrong_flagged": 0.6, "labels_right_flagged": 0.3},
        before,
        tolerance=0.05,
        latency_ratio=None,
    )
    assert worse == [
        "labels_wrong_flagged fell from 0.8 to 0.6",
        "labels_right_flagged rose from 0.1 to 0.3",
    ]
    same = {"labels_wrong_flagged": 0.78, "labels_right_flagged": 0.12}
    assert regressions(same, before, tolerance=0.05, latency_ratio=None) == []
    old = {"labels_wrong_flagged": None, "labels_right_flagged": None, "errors": None}
    assert regressions(same, old, tolerance=0.05, latency_ratio=None) == []


def test_a_set_s_labels_are_found_beside_it() -> None:
    rows = read_labels(EVAL / "git_manual_qa.jsonl")
    assert {r.label for r in rows} == {"right", "wrong"}
    assert all(r.hits for r in rows)
    assert len(rows) == sum(
        1
        for line in (EVAL / "labels" / "git_manual_qa.qwen0.5b.jsonl").read_text().splitlines()
        if json.loads(line)["label"] in ("right", "wrong")
    )
    assert read_labels(EVAL / "curated_docs.jsonl") == []


def test_the_check_s_agreement_with_the_labels_is_reported(components: Components) -> None:
    """The service's own check, run again on the default model's labelled answers to
    git_manual_qa with their passages: it flags more of the wrong ones than of the right
    ones (docs/answer-quality.md, "The git sets labelled whole": 9 of 11 wrong and 2 of 7
    right with the model's self-check, which the tests' model has no floor for)."""
    found = asyncio.run(label_agreement(components.chat, EVAL / "git_manual_qa.jsonl"))
    assert found is not None
    assert found["labelled"] == 18
    assert found["labels_wrong_flagged"] > found["labels_right_flagged"]
    assert asyncio.run(label_agreement(components.chat, EVAL / "curated_docs.jsonl")) is None


def test_the_self_check_enters_the_agreement_where_a_floor_applies(
    components: Components,
) -> None:
    """With a floor for the model in service (the tests' SmolLM2 has none measured, so a
    number is set), the model is asked of each labelled answer the text checks pass:
    above any share, every one is flagged; at 0, the text checks' figures stand."""
    qa = EVAL / "git_manual_qa.jsonl"
    text_only = asyncio.run(label_agreement(components.chat, qa))
    assert text_only is not None
    assert text_only["labels_self_checked"] == 0  # auto: no floor for this model
    chat = components.chat
    rag = chat.rag
    try:
        _self_check_floors(chat, qa, text_only)
    finally:
        chat.rag = rag  # the shared components, for the tests after


def _self_check_floors(chat: ChatService, qa: Path, text_only: dict[str, Any]) -> None:
    chat.rag = chat.rag.model_copy(update={"self_check": 0.0})
    at_zero = asyncio.run(label_agreement(chat, qa))
    assert at_zero is not None
    assert at_zero["labels_self_checked"] > 0
    assert at_zero["labels_right_flagged"] == text_only["labels_right_flagged"]
    chat.rag = chat.rag.model_copy(update={"self_check": 1.01})
    above = asyncio.run(label_agreement(chat, qa))
    assert above is not None
    assert above["labels_self_checked"] == at_zero["labels_self_checked"]
    assert above["labels_wrong_flagged"] == 1.0
    assert above["labels_right_flagged"] == 1.0


def test_an_evaluation_of_a_labelled_set_reports_the_agreement(components: Components) -> None:
    """`docchat eval answers` and the promotion gate on a set that carries labels: the
    report takes every figure the agreement gives (it once ended in a TypeError after
    all the answers, on labels_self_checked) and reads back from the registry."""
    qa = EVAL / "git_manual_qa.jsonl"
    cases = read_cases(qa)[:1]
    report = asyncio.run(evaluate_answers(components.chat, cases, labels_of=qa))
    assert report.questions == 1
    agreement = asyncio.run(label_agreement(components.chat, qa))
    assert agreement is not None
    for name, value in agreement.items():  # labelled, the shares, labels_self_checked
        assert getattr(report, name) == value
    data = report.as_dict()
    assert AnswerReport.from_dict(data).as_dict() == data
