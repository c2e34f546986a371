"""The scope decision's parts: the names a question uses, which of them a collection never
mentions, and the per-collection calibration (from a question set or the off-topic list)."""

from __future__ import annotations

import pytest

from app.rag.prompt import NO_CONTEXT_ANSWER
from app.rag.scope import (
    Calibration,
    calibrate,
    names,
    not_covered_answer,
    off_topic_questions,
    says_not_covered,
    threshold_from_off_topic,
    threshold_from_questions,
    unknown_names,
)
from app.store.lexical import tokens


def test_names_are_what_a_question_writes_as_names() -> None:
    assert names("How do I reset my Okta password?") == ["Okta"]
    assert names("Is docchat SOC 2 certified?") == ["SOC"]
    assert names("How do I fetch data with the useEffect hook?") == ["useEffect"]
    assert names("How do I loop with for_each? And json.dumps?") == ["for_each", "json.dumps"]
    # The first word of a sentence is capitalized anyway; I and plain numbers say nothing.
    assert names("Where do I find it. Backups run at 2 every night") == []
    # Contact details a user gives about themselves are not names the docs must hold.
    assert names("I am jane.doe@example.org, phone +1 415 555 0132. Whom do I call?") == []
    assert names("Does https://Example.org/SSO work with Okta?") == ["Okta"]


def test_unknown_names_are_those_no_term_of_the_collection_matches() -> None:
    vocabulary = {"backup", "kill", "widget", "server", "json.dumps", "json", "dump"}

    def unknown(question: str) -> list[str]:
        return unknown_names(question, tokens, vocabulary.__contains__)

    assert unknown("How do I reset my Okta password?") == ["Okta"]
    # A compound counts as mentioned when one of its parts is.
    assert unknown("My Backup job got OOM-killed. Why?") == []
    assert unknown("Does the Widget server run on Kubernetes with Helm?") == ["Kubernetes", "Helm"]
    assert unknown("What does json.dumps return?") == []


def test_a_model_saying_the_docs_do_not_cover_it_is_recognized() -> None:
    assert says_not_covered("The documentation does not cover this question.")
    assert says_not_covered("The excerpts don't mention a support hotline.")
    assert not says_not_covered("Run `widgetctl backup --full` [1].")


def test_threshold_from_questions_refuses_at_most_the_allowed_share() -> None:
    inside = [0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75]
    # 10% of ten questions: the lowest may fall below; halfway to the next one.
    assert threshold_from_questions(inside, 0.10) == pytest.approx(0.325)
    assert threshold_from_questions(inside, 0.25) == pytest.approx(0.375)
    # None may: just below the lowest.
    assert threshold_from_questions(inside, 0.05) == pytest.approx(0.295)
    with pytest.raises(ValueError, match="no in-scope questions"):
        threshold_from_questions([], 0.05)


def test_threshold_from_off_topic_is_above_every_unrelated_question() -> None:
    assert threshold_from_off_topic([0.1, 0.34, 0.2]) == pytest.approx(0.345)


def test_calibration_from_a_question_set_or_else_the_off_topic_list() -> None:
    scores = {"in a": 0.6, "in b": 0.5, "in c": 0.7, "out": 0.2, "generic": 0.25}
    from_set = calibrate(
        scores.__getitem__,
        questions=[("in a", False), ("in b", False), ("in c", False), ("out", True)],
        basis="set.jsonl",
        max_false_refusals=0.0,
    )
    assert from_set.method == "questions"
    assert from_set.threshold == pytest.approx(0.495)
    assert (from_set.in_scope, from_set.out_of_scope) == (3, 1)
    assert (from_set.false_refusals, from_set.refused_out_of_scope) == (0.0, 1.0)

    from_list = calibrate(scores.__getitem__, off_topic=["generic", "out"])
    assert from_list.method == "off-topic"
    assert from_list.threshold == pytest.approx(0.255)
    assert from_list.refused_out_of_scope == 1.0


def test_calibration_round_trips_through_collection_metadata() -> None:
    calibration = Calibration(0.4321, "questions", "eval/git_qa.jsonl", 60, 18, 0.05, 0.8)
    meta = {"docchat:model": "x", **calibration.to_metadata()}
    back = Calibration.from_metadata(meta)
    assert back is not None
    assert (back.threshold, back.method, back.basis) == (0.4321, "questions", "eval/git_qa.jsonl")
    assert (back.in_scope, back.out_of_scope, back.false_refusals) == (60, 18, 0.05)
    assert back.at == calibration.at  # when it was calibrated
    assert Calibration.from_metadata({"docchat:model": "x"}) is None


def test_the_shipped_off_topic_list_is_there() -> None:
    questions = off_topic_questions()
    assert len(questions) >= 50
    assert all(q.endswith("?") for q in questions)


def test_the_refusal_names_what_the_docs_never_mention() -> None:
    assert not_covered_answer([]) == NO_CONTEXT_ANSWER
    assert "never mentions Okta," in not_covered_answer(["Okta"])
    assert "never mentions Kubernetes or Helm," in not_covered_answer(["Kubernetes", "Helm"])
    # No name the docs lack, but a kind of fact no passage gives (app/rag/answer_types.py).
    price = not_covered_answer([], ["a price"])
    assert "I found no passage that gives a price, so I will not guess." in price
    assert "never mentions Okta," in not_covered_answer(["Okta"], ["a price"])  # names first
