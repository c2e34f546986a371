"""Whether the passages found answer the question: a near miss in the manual's own field
(a name the collection only brushes against, absent from the passages) is refused; a
name the collection uses all the time is not. The texts are the git and Python
manuals' near misses and in-scope questions of the question sets (eval/), with the
shares of chunks their names reach in those collections (measured in
benchmarks/answerable.json)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from app.rag.answerable import answerability, missing_names, rare_missing_names
from app.settings import Settings
from app.store.vectors import Hit
from tests.conftest import FIXTURES, Models
from tests.rag.test_scope_retrieval import corpus, found, retriever  # noqa: F401

GIT_PASSAGE = Hit(
    "git",
    "Enable showing size of blobs (ordinary files) in a tree view, in a separate "
    "column. Large files can be kept out of the history with git filter-branch.",
    0.62,
    {"source": "gitweb.conf.html"},
)
CRLF_PASSAGE = Hit(
    "crlf",
    "core.autocrlf: setting this variable to true makes git convert CRLF at the end of "
    "lines in text files to LF when reading from the filesystem.",
    0.7,
    {"source": "git-config.html"},
)
# The share of the git manual's chunks each term is in (its word index's terms).
GIT_SHARES = {"lfs": 0.00015, "github": 0.0049, "window": 0.015, "git": 0.9}


def share(table: dict[str, float]) -> Callable[[str], float]:
    return lambda term: table.get(term, 0.0)


def test_a_name_rare_in_the_collection_and_absent_from_the_passages_is_refused() -> None:
    question = "How do I track large video files with Git LFS so they don't bloat the repo?"
    assert missing_names(question, [GIT_PASSAGE]) == ["LFS"]  # "git" is in it
    assert rare_missing_names(question, [GIT_PASSAGE], share(GIT_SHARES)) == ["LFS"]
    numpy = "How do I add a vector to every row of a matrix with NumPy broadcasting?"
    python = share({"numpi": 0.0016, "vector": 0.01})
    assert rare_missing_names(numpy, [CRLF_PASSAGE], python) == ["NumPy"]
    # GitHub, in 0.49% of the git manual's chunks, is above the bound chosen on the dev
    # half (0.35%): a near miss it lets through.
    github = "How do I add my SSH public key to my account on the GitHub website?"
    assert missing_names(github, [GIT_PASSAGE]) == ["SSH", "GitHub"]
    assert rare_missing_names(github, [GIT_PASSAGE], share(GIT_SHARES | {"ssh": 0.01})) == []


def test_a_name_the_collection_uses_all_the_time_is_context() -> None:
    """In scope (git_qa): "Windows" is in 1.5% of the git manual's chunks, not in the
    passage that answers."""
    question = "On Windows my files keep getting CRLF line endings. How do I fix that?"
    assert "Windows" in missing_names(question, [CRLF_PASSAGE])
    table = GIT_SHARES | {"crlf": 0.002}
    assert rare_missing_names(question, [CRLF_PASSAGE], share(table)) == []


def test_a_version_counts_whole_not_by_its_digits() -> None:
    """ "3.13" is not found because "3" and "13" are: a version is one name."""
    passage = Hit("jit", "Is there a JIT compiler? Not in Python 3.11.", 0.7, {"source": "faq"})
    question = "What does the JIT compiler in Python 3.13 do?"
    assert missing_names(question, [passage]) == ["3.13"]
    table = {"3.13": 0.0033, "3": 0.39, "13": 0.011, "jit": 0.001, "python": 0.5}
    assert rare_missing_names(question, [passage], share(table)) == ["3.13"]
    assert rare_missing_names(question.replace("3.13", "3.11"), [passage], share(table)) == []


def test_the_measures_not_kept_are_computed(models: Models) -> None:
    """The benchmark's two measures: key words in a passage, best sentence cosine."""
    a = answerability(
        "How do I make git convert CRLF line endings?", [CRLF_PASSAGE], models.embedder.embed
    )
    # git, convert, crlf of git, convert, crlf, line, endings: "lines" is cut to "lines",
    # not "line" (the first five letters), and "end" is not "endings".
    assert a.lexical == pytest.approx(3 / 5)
    assert 0.3 < a.semantic <= 1.0
    assert a.sentence.startswith("setting this variable to true")  # split at the colon
    assert a.source == "git-config.html"


def test_the_retriever_applies_it_without_refusing_the_corpus_s_own_questions(
    corpus: Settings,  # noqa: F811
    models: Models,
) -> None:
    """On the fixture corpus, with the setting on (the default) and off: the same
    in-scope questions find their passages."""
    from app.evaluation.cases import read_cases

    cases = [c for c in read_cases(FIXTURES / "corpus_qa.jsonl") if not c.out_of_scope]
    with retriever(corpus, models) as on, retriever(corpus, models, answerable_names=False) as off:
        assert on.answerable_names
        assert [found(on, c.question) for c in cases] == [found(off, c.question) for c in cases]
