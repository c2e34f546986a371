"""A question that asks for a price, a phone number, a contact address or a release date
is refused when no passage holds one; a question that only uses such a word is not
asked to find one. The questions are near misses and in-scope questions of the sets in
eval/ (eval/heldout/ included); the passages are the kind the collections return."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.rag.answer_types import asked_types, missing_answer_types
from app.settings import Settings
from tests.api.test_chat import stream_chat
from tests.conftest import Models
from tests.rag.test_scope_retrieval import corpus, found, retriever  # noqa: F401

ABOUT = (
    "docchat is a self-hosted documentation chatbot. You point it at your product "
    "documentation; people and tools ask questions through a web page and an HTTP API."
)


def kinds(question: str) -> list[str]:
    return [t.name for t in asked_types(question)]


def test_near_misses_ask_for_a_kind_of_fact_the_passages_lack() -> None:
    price = "How much does the docchat enterprise plan cost per seat per month?"
    phone = "What is the phone number of the docchat customer support hotline?"
    date = "When is docchat 2.0 coming out, and what is on the roadmap?"
    mail = "What's the email address of the docchat sales team?"
    for question, kind in ((price, "a price"), (phone, "a phone number"), (date, "a date")):
        assert missing_answer_types(question, [ABOUT]) == [kind]
    assert missing_answer_types(mail, [ABOUT]) == ["an e-mail address"]
    # A version's dots do not end the sentence the "when" is in.
    assert kinds("When does Python 3.11 stop getting security fixes?") == ["a date"]


def test_a_passage_holding_such_a_fact_answers_it() -> None:
    assert not missing_answer_types("What does the plan cost?", ["It costs $12 a month."])
    assert not missing_answer_types("Is there a support hotline?", ["Call +1 800 555 0199."])
    assert not missing_answer_types("When was 2.0 released?", ["2.0 came out in March 2025."])
    assert not missing_answer_types(
        "What's the e-mail address of the support team?", ["Write to help@example.com."]
    )


def test_the_word_alone_is_not_the_fact() -> None:
    """A settings table that lists "phone" among kinds of personal data holds no number;
    a page's "Last updated" stamp dates the file, not a release."""
    table = 'privacy.redact_kinds | ["email", "phone", "card"] | what is replaced'
    assert missing_answer_types("Is there a number I can ring when it is down?", [table]) == [
        "a phone number"
    ]
    stamp = "Part of the git(1) suite\n\nLast updated 2024-05-31 00:35:55 UTC"
    assert missing_answer_types("When is the next Git release coming out?", [stamp]) == ["a date"]
    assert missing_answer_types("When is the next release coming out?", ["Version 2.39.2"])


def test_questions_that_only_use_such_words_ask_for_none() -> None:
    """In-scope questions of the sets: a cost in memory, a "when" about behaviour, a
    release as a tag, an e-mail address in a commit."""
    for question in (
        "How much does a dict cost in memory compared with a class with __slots__?",
        "When does git clean up loose objects on its own?",
        "When was the walrus operator added to Python?",
        "After upgrading to a new release, do I have to run database migrations myself?",
        "How do I mark a release version on a commit, with a message and my name on it?",
        "How do I change the name and email address that get recorded in my commits?",
        "Is there an endpoint my load balancer can poll to know when the server is ready?",
    ):
        assert kinds(question) == [], question


def test_the_retriever_refuses_it_and_keeps_the_corpus_s_questions(
    corpus: Settings,  # noqa: F811
    models: Models,
) -> None:
    """On the fixture corpus (Acme Widget Server's docs): a price question finds the
    guide, well inside the scope, and is refused only with the setting on."""
    from app.evaluation.cases import read_cases
    from tests.conftest import FIXTURES

    near_miss = "How much does an Acme Widget Server licence cost per server?"
    cases = [c for c in read_cases(FIXTURES / "corpus_qa.jsonl") if not c.out_of_scope]
    with retriever(corpus, models) as on, retriever(corpus, models, answer_types=False) as off:
        assert on.answer_types
        assert found(off, near_miss)
        assert not found(on, near_miss)
        assert [found(on, c.question) for c in cases] == [found(off, c.question) for c in cases]
    with retriever(corpus, models, scope="min_score") as before:
        assert found(before, near_miss)  # the scope decision's override turns it off
    # A follow-up joined to the price question (rag.followups) asks what it asks
    # itself: found with a price question before it in the conversation.
    port = "Which port does it use if I don't change anything?"
    with retriever(corpus, models) as on:
        assert on.context_sync(port)
        assert on.context_sync(f"{near_miss}\n{port}", near_miss)


def test_the_chat_says_which_kind_of_fact_the_docs_do_not_give(client: TestClient) -> None:
    """Asked through /api/chat (the fixture corpus, calibrated at ingest; the model is
    never reached: the question is refused before it), the refusal names the kind of
    fact, not a name the docs lack."""
    question = "How much does an Acme Widget Server licence cost per server?"
    done = stream_chat(client, {"question": question})[-1][1]
    assert done["answered_from_docs"] is False
    assert "I found no passage that gives a price, so I will not guess." in done["answer"]
    assert done["citations"] == []
