"""An answer that only restates the question, yes or no apart, is judged ungrounded:
its one claim is its polarity, which the passages (found because they resemble the
question) seem to support either way. The answers are the default model's, from the
hand labels (eval/labels/)."""

from __future__ import annotations

import asyncio

from app.components import Components
from app.llm.base import GenerationStats
from app.rag.grounding import restates_question
from app.store.vectors import Hit

POSTGRES = "Can I run it on Postgres instead of the SQLite file?"
PASSAGE = (
    "docchat keeps its records in a SQLite file by default. To run it on PostgreSQL "
    "instead, set database.url to a postgresql+psycopg URL; the tables are created on "
    "first start."
)


def test_restated_yes_or_no_answers() -> None:
    assert restates_question(
        POSTGRES, "Yes, you can run it on Postgres instead of the SQLite file."
    )
    worktrees = (
        "Can I have two branches checked out at the same time in separate folders from "
        "one repository?"
    )
    assert restates_question(
        worktrees,
        "No, you cannot have two branches checked out at the same time in separate folders "
        "from one repository.",
    )
    assert restates_question(
        "Does Python 3.11 improve tracebacks?", "No, Python 3.11 doesn't improve tracebacks."
    )


def test_a_word_in_another_form_an_excerpt_number_or_a_placeholder_adds_nothing() -> None:
    # Labelled wrong answers the check once missed: "keeps" is the question's "keep"
    # (its first five letters differ, its stem does not) ...
    assert restates_question(
        "Where does the web page keep the API key I typed in? Is it saved in a cookie?",
        "The web page keeps the API key I typed in in a cookie.",
    )
    # ... "[1]" is an excerpt's number, not an answer ...
    subprocess = (
        "Which module lets me run an external program and grab whatever it prints to "
        "stdout as a string?"
    )
    answer = "The module that lets me run an external program and grab whatever it prints "
    assert restates_question(subprocess, answer + "to stdout as a string is [1].")
    assert not restates_question(subprocess, answer + "is subprocess [1].")
    # ... and "anything" names nothing.
    dash_m = "What does passing -m to the python command do?"
    assert restates_question(dash_m, "Passing -m to the python command does not do anything.")
    assert not restates_question(dash_m, "Passing -m runs a library module as a script.")


def test_an_answer_that_adds_anything_is_left_to_the_other_checks() -> None:
    assert not restates_question(POSTGRES, "Yes: set database.url to a PostgreSQL URL.")
    assert not restates_question(
        "If I reload the browser tab, is my chat history gone?",
        "No, my chat history is not gone. The conversation survives a reload.",
    )
    assert not restates_question("How many requests a minute may one key make?", "120")
    # A name in code's spelling counts whole: ValueError is not the question's "value".
    exception = (
        "Which built-in exception should I raise when a function gets an argument of the "
        "right type but an unacceptable value?"
    )
    answer = "The built-in exception ValueError should be raised when a function gets an "
    assert not restates_question(exception, answer + "argument of the right type.")
    assert restates_question(exception, "The built-in exception should be raised.")
    # A bare echo of the question's own term is one.
    assert restates_question("What does the term EAFP mean in Python?", "EAFP")
    assert not restates_question(POSTGRES, "No.")  # nothing to judge


def test_the_verdict_flags_it_and_the_setting_turns_it_off(components: Components) -> None:
    chat = components.chat
    chat.rag = chat.rag.model_copy(update={"min_confidence": None})
    hits = [Hit("db", PASSAGE, 0.7, {"source": "configuration.md"})]
    echo = "Yes, you can run it on Postgres instead of the SQLite file."
    checks = asyncio.run(chat.check_grounding(echo, hits, POSTGRES, False, GenerationStats()))
    assert checks.grounded is False
    assert checks.flagged_by == ["restates"]  # the score and the terms pass it
    chat.rag = chat.rag.model_copy(update={"check_restated": False})
    off = asyncio.run(chat.check_grounding(echo, hits, POSTGRES, False, GenerationStats()))
    assert off.grounded is True
    assert off.grounding_score == checks.grounding_score
