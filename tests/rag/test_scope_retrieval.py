"""The scope decision on the real fixture corpus: what the docs do not cover is refused
before the model is asked, with the collection's own calibration (stored with it) and
the names it never mentions; what they cover still finds its passages."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.components import open_database, open_vectors
from app.evaluation.cases import read_cases
from app.rag.retrieval import Retriever
from app.settings import Settings
from tests.conftest import CORPUS, FIXTURES, Models, ingest_into, make_settings

IN_SCOPE = "Which port does the widget server use if I don't change anything?"
# Another product's install: its best chunk (the widget server's installation, 0.66)
# is well above rag.min_score, but the corpus never mentions Homebrew.
NEAR_MISS = "How do I install the widget server with Homebrew?"
# In scope, but the lowest-scoring question of the corpus's set (0.30).
LOW = "What is the nickname of release 3.2?"


@pytest.fixture
def corpus(tmp_path: Path, models: Models) -> Settings:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("guide.md", "notes.txt"):
        shutil.copy(CORPUS / name, docs / name)
    shutil.copytree(CORPUS / "admin", docs / "admin")
    shutil.copytree(CORPUS / "reference", docs / "reference")
    settings = make_settings(tmp_path / "data")
    ingest_into(settings, models.embedder, docs)
    return settings


@contextmanager
def retriever(
    settings: Settings, models: Models, *, writer: bool = False, **rag: object
) -> Iterator[Retriever]:
    vectors = open_vectors(settings, writer=writer)
    db = open_database(settings)
    try:
        yield Retriever.configured(
            settings.rag.model_copy(update=rag),
            models.embedder,
            vectors,
            db,
            settings.vectors.collection,
            data_dir=None,
        )
    finally:
        db.close()
        vectors.close()


def found(r: Retriever, question: str) -> bool:
    return bool(asyncio.run(r.context(question)))


def test_a_question_naming_what_the_docs_never_mention_is_refused(
    corpus: Settings, models: Models
) -> None:
    with retriever(corpus, models) as calibrated:
        assert calibrated.best_score(NEAR_MISS) > corpus.rag.min_score
        assert calibrated.unknown_names(NEAR_MISS) == ["Homebrew"]
        assert not found(calibrated, NEAR_MISS)
        assert found(calibrated, IN_SCOPE)
    # Before: one fixed cosine for every collection let it through to the model.
    with retriever(corpus, models, scope="min_score") as fixed:
        assert found(fixed, NEAR_MISS)


def test_the_threshold_calibrated_from_a_set_is_stored_and_used(
    corpus: Settings, models: Models
) -> None:
    cases = read_cases(FIXTURES / "corpus_qa.jsonl")
    with retriever(corpus, models, writer=True) as writer:
        assert writer.calibration() is None
        assert found(writer, LOW)  # uncalibrated: rag.min_score (0.3) decides
        # One in-scope question of six may fall below: the threshold rises above LOW's.
        calibration = writer.calibrate(
            [(c.question, c.out_of_scope) for c in cases],
            basis="corpus_qa.jsonl",
            max_false_refusals=0.2,
        )
        assert calibration.method == "questions"
        assert (calibration.in_scope, calibration.out_of_scope) == (6, 2)
        assert writer.best_score(LOW) < calibration.threshold
        assert calibration.false_refusals == pytest.approx(1 / 6)
        assert calibration.refused_out_of_scope == 1.0
        writer.save_calibration(calibration)
    with retriever(corpus, models) as reader:
        stored = reader.calibration()
        assert stored is not None
        assert stored.threshold == pytest.approx(calibration.threshold, abs=1e-4)
        assert not found(reader, LOW)
        assert found(reader, IN_SCOPE)
    with retriever(corpus, models, scope="min_score") as ignored:
        assert found(ignored, LOW)


def test_without_a_set_the_off_topic_list_calibrates(corpus: Settings, models: Models) -> None:
    with retriever(corpus, models) as r:
        calibration = r.calibrate()
        assert calibration.method == "off-topic"
        assert calibration.refused_out_of_scope == 1.0
        # Unrelated questions of the corpus's set fall below it, its questions do not.
        for case in read_cases(FIXTURES / "corpus_qa.jsonl"):
            score = r.best_score(case.question)
            assert (score < calibration.threshold) == case.out_of_scope, case.question
