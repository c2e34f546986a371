"""Follow-up questions made standalone before retrieval: by rules, by the real chat
model, and through the chat service on the fixture corpus."""

from __future__ import annotations

import asyncio

import pytest

from app.chat.question import Question
from app.components import Components
from app.rag.followup import reads_like_followup, standalone_by_model, standalone_by_rules
from tests.conftest import Models

PREVIOUS = "Which port does the widget server listen on by default?"


@pytest.mark.parametrize(
    "question",
    ["And how do I change it?", "What about the address?", "How do I undo that?", "In Docker?"],
)
def test_follow_ups_are_recognised(question: str) -> None:
    assert reads_like_followup(question)
    assert standalone_by_rules(question, PREVIOUS) == f"{PREVIOUS}\n{question}"


def test_a_question_that_stands_alone_is_searched_as_asked() -> None:
    question = "How do I restore widgets from a backup archive?"
    assert not reads_like_followup(question)
    assert standalone_by_rules(question, PREVIOUS) == question
    assert standalone_by_rules("And how do I change it?", None) == "And how do I change it?"


def test_the_chat_model_rewrites_a_follow_up(models: Models) -> None:
    rewritten = asyncio.run(standalone_by_model(models.engine, "How do I change it?", PREVIOUS))
    assert rewritten
    assert "\n" not in rewritten
    assert rewritten != "How do I change it?"
    alone = "How do I restore widgets from a backup archive?"
    assert asyncio.run(standalone_by_model(models.engine, alone, PREVIOUS)) == alone


def passages_for(components: Components, mode: str) -> str:
    rag = components.settings.rag.model_copy(update={"followups": mode})
    settings = components.settings.model_copy(update={"rag": rag})
    chat = components.using(settings=settings).chat

    async def opened() -> str:
        history = (("user", PREVIOUS), ("assistant", "Port 7421, unless configured."))
        answer = await chat.open(Question("And how do I change it?", history=history, store=False))
        try:
            return "\n".join(h.text for h in answer.hits)
        finally:
            await answer.cancel()

    return asyncio.run(opened())


def test_the_service_searches_a_follow_up_with_its_context(components: Components) -> None:
    assert "widget.toml" in passages_for(components, "rules")
