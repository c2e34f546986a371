"""`docchat dataset synth`: the small model writes questions for the passages of a
tiny collection; junk is filtered; each example holds its passage among distractors as
the chat service's prompt does (or leaves it out and declines); the model is asked
once per passage."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from app.curation import raft, synthesis
from app.curation.export import messages_for
from app.llm.provision import small_chat_model
from app.rag.grounding import sentences
from app.rag.prompt import SYSTEM_PROMPT
from app.store.db import Database
from common.files import file_sha256
from tests.conftest import Models, run_docchat
from tests.curation.conftest import Rated


def passage(n: int, text: str, document: str = "d1", section: str = "") -> dict[str, Any]:
    return {
        "text": text,
        "source": f"{document}.md",
        "title": document,
        "section": section or f"s{n}",
        "document_id": document,
        "chunk": n,
        "content_hash": "0" * 64,
    }


PORT = passage(0, "The widget server listens on port 7421 by default; set port to change it.")
OTHERS = [
    passage(1, "The widget server stores widgets in data_dir, on port-less storage.", "d2"),
    passage(2, "Run widgetctl start to start the widget server in the background.", "d2"),
    passage(3, "The server port and listen_address live in widget.toml.", "d1", "s0"),
    passage(4, "Backups copy the data_dir of the widget server nightly.", "d3"),
    passage(5, "Bananas are yellow and grow in bunches.", "d4"),
]


def test_pairs_are_parsed_and_junk_is_refused(models: Models) -> None:
    written = (
        "Question: Which port does the widget server listen on?\n"
        "Answer: It listens on port 7421 by default [1].\n"
        "Question: What does the passage say about ports?\nAnswer: Port 7421.\n"
        "Question: Tell me the port\nAnswer: 7421 is the port.\n"
        "Question: Which port does the widget server listen on?\nAnswer: Port 7421.\n"
        "Question: How is the widget server licensed?\n"
        "Answer: The widget server is sold under the Apache license by Acme Corp.\n"
        "Question: Can I pick another port?\nAnswer: The documentation does not cover it."
    )
    pairs = synthesis.parse(written)
    assert pairs[0] == (
        "Which port does the widget server listen on?",
        "It listens on port 7421 by default.",  # the model's own citation is taken out
    )
    judged = synthesis.judge(pairs, PORT, models.embedder, synthesis.Checks(), set())
    assert [p.rejected for p in judged] == [
        "",
        "question speaks of the passage",
        "not a question",
        "question asked twice",
        "answer not grounded in the passage",
        "answer declines",
    ]
    assert synthesis.summary(judged)["kept"] == 1


def test_distractors_are_near_the_oracle_and_never_hold_it() -> None:
    everything = [PORT, *OTHERS]
    drawn = set()
    for seed in range(20):
        (found,) = raft.distractors_for(
            PORT, everything, 1, random.Random(seed), other_documents=False
        )
        drawn.add(found["chunk"])
    # Drawn among the POOL nearest; never the passage itself or its own section (3),
    # never the far one (5).
    assert drawn == {1, 2, 4}
    apart = raft.distractors_for(PORT, everything, 4, random.Random(0), other_documents=True)
    assert len(apart) == 4
    assert all(p["document_id"] != "d1" for p in apart)  # not even its own document


def test_a_record_is_the_serving_prompt_citing_the_oracle() -> None:
    everything = [PORT, *OTHERS]
    recipe = raft.Recipe(distractors=2, no_oracle_share=0.0, max_tokens=10_000)
    row = raft.record(
        PORT,
        "Which port does it use?",
        "Port 7421.",
        everything,
        recipe,
        "docs",
        lambda messages: sum(len(m["content"]) for m in messages),
    )
    assert row is not None
    texts = [p["text"] for p in row["passages"]]
    assert len(texts) == 3
    number = texts.index(PORT["text"]) + 1
    assert row["answer"] == f"Port 7421 [{number}]."
    messages = messages_for(row)
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert f"[{number}] (d1.md — s0)\n<excerpt>\n{PORT['text']}" in messages[1]["content"]
    assert messages[1]["content"].endswith("Question: Which port does it use?")

    # Too long for the budget: distractors go, the oracle stays; then nothing fits.
    def length(messages: list[dict[str, str]]) -> int:
        return sum(len(m["content"]) for m in messages)

    budget = length(messages_for({**row, "passages": [PORT]})) + 10
    short = raft.record(
        PORT, "Which port does it use?", "Port 7421.", everything,
        raft.Recipe(distractors=2, no_oracle_share=0.0, max_tokens=budget), "docs", length,
    )  # fmt: skip
    assert short is not None
    assert [p["text"] for p in short["passages"]] == [PORT["text"]]
    assert short["answer"] == "Port 7421 [1]."
    none = raft.record(
        PORT, "Which port does it use?", "Port 7421.", everything,
        raft.Recipe(distractors=2, no_oracle_share=0.0, max_tokens=budget - 100), "docs", length,
    )  # fmt: skip
    assert none is None


def test_without_the_oracle_the_target_declines() -> None:
    everything = [PORT, *OTHERS]
    recipe = raft.Recipe(distractors=1, no_oracle_share=0.99, max_tokens=10_000)
    row = raft.record(PORT, "Which port?", "Port 7421.", everything, recipe, "docs", len)
    assert row is not None
    assert row["answer"] == raft.NOT_COVERED_ANSWER
    assert len(row["passages"]) == 2  # as many excerpts as with the oracle
    assert all(p["document_id"] != "d1" for p in row["passages"])


def test_synth_asks_once_refuses_junk_and_builds_from_what_passes(
    rated: Rated, db: Database
) -> None:
    """SmolLM2-135M writes nothing that passes on this corpus (it copies the worked
    example or invents settings): the run says so and builds nothing. The questions a
    capable model writes are then put into the cache in its place (a stand-in: the
    small model cannot be made to write them), and the same command builds from them."""
    env = {**rated.env(), "DOCCHAT_LLM__MODEL_PATH": str(small_chat_model())}
    collection = rated.settings.vectors.collection
    args = ["--collection", collection, "--distractors", "1", "--json"]
    args += ["--no-oracle-share", "0.3", "--held-out", "0.3"]
    junk = run_docchat("dataset", "synth", "synth-a", *args, env=env, timeout=900)
    assert junk.returncode == 1, junk.stdout
    assert "no question passed the checks" in junk.stderr
    assert "questions" in junk.stderr  # the progress bar
    with db.session() as session:
        passages = raft.collection_passages(session, collection)
    assert len(passages) >= 2
    model_sha = file_sha256(small_chat_model())
    cache = synthesis.cache_path(rated.settings.data_dir, model_sha, collection)
    assert len(cache.read_text().splitlines()) == len(passages)  # asked once each

    questions = ["How do I install it?", "Where do I configure it?", "What is new?"]
    written = synthesis.Cache(cache)
    for question, p in zip(questions, passages, strict=False):
        answer = max(sentences(str(p["text"])), key=len)  # the passage's own words
        written.add(synthesis.passage_key(p, 1), f"Question: {question}\nAnswer: {answer}")
    done = run_docchat("dataset", "synth", "synth-a", *args, env=env, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    built = json.loads(done.stdout)
    assert built["synthesis"]["asked"] == 0  # everything from the cache
    assert built["n_examples"] == built["synthesis"]["kept"] == len(passages)

    rows = [json.loads(line) for line in Path(built["path"]).read_text().splitlines()]
    assert {r["question"] for r in rows} == set(questions[: len(passages)])
    by_question = dict(zip(questions, passages, strict=False))
    for row in rows:
        texts = [p["text"] for p in row["passages"]]
        # The oracle and one distractor, or two distractors; fewer where the prompt would
        # pass --max-tokens (distractors go first). Which example goes without its
        # oracle follows the passage's document id, new with every ingest.
        assert 1 <= len(texts) <= 2
        oracle = by_question[row["question"]]["text"]
        if row["answer"] == raft.NOT_COVERED_ANSWER:
            assert oracle not in texts
            continue
        (number,) = synthesis.CITATION_NUMBER.findall(row["answer"])
        assert texts[int(number) - 1] == oracle

    taken = run_docchat("dataset", "synth", "synth-a", *args, env=env)
    assert taken.returncode == 1
    assert "exists" in taken.stderr


@pytest.mark.parametrize(
    ("question", "problem"),
    [
        ("How do I start the server?", ""),
        ("Where is it in the documentation?", "question speaks of the passage"),
        ("Why?", "question too short or too long"),
    ],
)
def test_question_checks(question: str, problem: str) -> None:
    assert synthesis.question_problem(question, set()) == problem
