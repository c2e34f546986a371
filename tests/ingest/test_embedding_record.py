"""Each collection records the embedding model and chunking it was built with; another
model or chunking is refused with both named. Real models, real Chroma, SQLite."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from app.components import build_components, open_vectors
from app.llm.embedder import Embedder
from app.llm.provision import default_embedding_model
from app.rag.retrieval import Retriever
from app.settings import Settings
from app.store.index_record import Chunking, EmbeddingMismatch, IndexRecord
from tests.conftest import CORPUS, Models, ingest_into, make_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX export for the session (it takes seconds)."""
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def int8(embedding_cache: Path) -> Embedder:
    """The same model quantized to int8 (per-channel scales): other vectors, so another
    embedding model."""
    return Embedder(default_embedding_model(), backend="onnx-int8", cache_dir=embedding_cache)


@pytest.fixture
def built(tmp_path: Path, models: Models) -> Settings:
    """A small collection ingested with the session's torch fp32 embedder."""
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS / "reference", corpus)
    shutil.copy(CORPUS / "guide.md", corpus)
    settings = make_settings(tmp_path / "data")
    ingest_into(settings, models.embedder, corpus)
    return settings


def notes_folder(tmp_path: Path) -> Path:
    """A folder holding one file that is not in `built` yet."""
    more = tmp_path / "more"
    more.mkdir()
    shutil.copy(CORPUS / "notes.txt", more)
    return more


def record_of(settings: Settings) -> IndexRecord | None:
    """What the settings' collection records."""
    vectors = open_vectors(settings, writer=False)
    try:
        return vectors.target(settings.vectors.collection).record
    finally:
        vectors.close()


def test_a_collection_records_its_model_and_chunking(built: Settings, models: Models) -> None:
    vectors = open_vectors(built, writer=False)
    try:
        target = vectors.target(built.vectors.collection)
    finally:
        vectors.close()
    assert target.record is not None
    assert target.record.model == models.embedder.identity
    assert target.record.model.dimension == 384
    assert len(target.record.model.sha256) == 64
    assert target.record.chunking == Chunking(built.ingest.chunk_tokens, built.ingest.chunk_overlap)


def test_querying_with_another_model_is_refused_naming_both(
    built: Settings, models: Models, int8: Embedder
) -> None:
    vectors = open_vectors(built, writer=False)
    try:
        retriever = Retriever(int8, vectors, built.vectors.collection, top_k=3, min_score=0)
        with pytest.raises(EmbeddingMismatch) as refused:
            retriever.search_sync("How do I back up?")
        # ...while the model it was built with still answers.
        same = Retriever(models.embedder, vectors, built.vectors.collection, top_k=3, min_score=0)
        assert same.search_sync("How do I back up?")
    finally:
        vectors.close()
    message = str(refused.value)
    assert models.embedder.identity.describe() in message
    assert int8.identity.describe() in message
    assert "docchat reindex --collection docs" in message
    # A server refuses to start on it, with the same reason.
    with pytest.raises(EmbeddingMismatch, match="int8"):
        build_components(built, writer=False, embedder=int8, engine=None)


def test_ingesting_with_another_model_or_chunking_is_refused(
    built: Settings, tmp_path: Path, models: Models, int8: Embedder
) -> None:
    more = notes_folder(tmp_path)
    with pytest.raises(EmbeddingMismatch) as refused:
        ingest_into(built, int8, more)
    assert "int8" in str(refused.value)
    assert "fp32" in str(refused.value)
    rechunked = built.model_copy(
        update={"ingest": built.ingest.model_copy(update={"chunk_tokens": 120})}
    )
    with pytest.raises(EmbeddingMismatch, match=r"chunks of 200 tokens.*chunks of 120 tokens"):
        ingest_into(rechunked, models.embedder, more)
    # Nothing of either got in: the collection still holds only its own chunks.
    vectors = open_vectors(built, writer=False)
    try:
        sources = {h.metadata["source"] for h in vectors.query("docs", [0.1] * 384, 50)}
    finally:
        vectors.close()
    assert "notes.txt" not in sources


def test_a_collection_from_before_records_adopts_the_model_in_use(
    built: Settings, models: Models, caplog: pytest.LogCaptureFixture
) -> None:
    vectors = open_vectors(built, writer=True)
    try:
        collection = vectors._collection("docs")
        collection.modify(metadata={"legacy": "yes"})  # as an older docchat left it
        assert vectors.target("docs").record is None
        with caplog.at_level(logging.WARNING, logger="app.store.vectors"):
            # What a server does when it starts on the collection.
            vectors.check_model("docs", models.embedder.identity, adopt=False)
        record = vectors.target("docs").record
    finally:
        vectors.close()
    assert "has no record of its embedding model: adopting" in caplog.text
    assert record is not None
    assert record.model == models.embedder.identity


def test_onnx_fp32_gives_the_torch_vectors(models: Models, embedding_cache: Path) -> None:
    onnx = Embedder(default_embedding_model(), backend="onnx", cache_dir=embedding_cache)
    texts = [
        "How do I rotate the logs?",
        "Backups run nightly; restore with the restore command. " * 12,
        "x",
        (CORPUS / "guide.md").read_text()[:3000],  # past the 256-token window
    ]
    torch_vectors = np.array(models.embedder.embed(texts))
    onnx_vectors = np.array(onnx.embed(texts))
    cosines = (torch_vectors * onnx_vectors).sum(axis=1)
    assert cosines.min() > 0.999
    # The same embedding model for a collection's record; int8 is not.
    assert onnx.identity.space == models.embedder.identity.space
    assert onnx.identity.backend == "onnx"


@pytest.fixture(scope="session")
def auto(embedding_cache: Path) -> Embedder:
    """The default backend: each collection's own variant, int8 for new ones."""
    return Embedder(default_embedding_model(), backend="auto", cache_dir=embedding_cache)


def test_auto_builds_a_new_collection_with_int8_and_answers_from_it(
    tmp_path: Path, auto: Embedder, int8: Embedder, models: Models
) -> None:
    settings = make_settings(tmp_path / "data")
    ingest_into(settings, auto, CORPUS / "guide.md")
    vectors = open_vectors(settings, writer=False)
    try:
        record = vectors.target("docs").record
        assert record is not None
        assert record.model == int8.identity  # int8, run by ONNX Runtime
        assert record.model.backend == "onnx-int8"
        hits = Retriever(auto, vectors, "docs", top_k=3, min_score=0).search_sync(
            "How do I back up?"
        )
        assert hits
        assert hits[0].metadata["source"] == "guide.md"
        # An explicit fp32 backend is still refused on it, naming both.
        with pytest.raises(EmbeddingMismatch, match="int8"):
            Retriever(models.embedder, vectors, "docs", top_k=3, min_score=0).search_sync("x")
    finally:
        vectors.close()
    # A server on backend auto starts on it.
    build_components(settings, writer=False, embedder=auto, engine=None).close()


def test_auto_keeps_an_fp32_collection_fp32(
    built: Settings, tmp_path: Path, auto: Embedder, models: Models
) -> None:
    more = notes_folder(tmp_path)
    ingest_into(built, auto, more)  # joins the fp32 chunks: embedded in fp32
    vectors = open_vectors(built, writer=False)
    try:
        record = vectors.target("docs").record
        assert record is not None
        assert record.model == models.embedder.identity
        note = (CORPUS / "notes.txt").read_text()[:200]
        hits = Retriever(auto, vectors, "docs", top_k=1, min_score=0).search_sync(note)
        # The chunk auto wrote is found by the fp32 query with a near-identical vector.
        assert hits[0].metadata["source"].endswith("notes.txt")
        assert hits[0].score > 0.8
    finally:
        vectors.close()
    build_components(built, writer=False, embedder=auto, engine=None).close()


def test_auto_adopts_fp32_for_a_collection_from_before_records(
    built: Settings, tmp_path: Path, auto: Embedder, models: Models
) -> None:
    vectors = open_vectors(built, writer=True)
    try:
        vectors._collection("docs").modify(metadata={"legacy": "yes"})
    finally:
        vectors.close()
    # Its vectors were made by fp32 (the only variant before records): not new, so not int8.
    ingest_into(built, auto, notes_folder(tmp_path))
    record = record_of(built)
    assert record is not None
    assert record.model == models.embedder.identity


def test_an_unwritable_export_cache_falls_back_to_a_temporary_folder(
    tmp_path: Path, int8: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    # A file where the cache folder should be: nothing can be written under it (the
    # suite runs as root, which file modes would not stop), as in an image whose baked
    # cache is read-only and a model it does not hold is configured.
    blocked = tmp_path / "cache"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.WARNING):
        made = Embedder(default_embedding_model(), backend="onnx-int8", cache_dir=blocked)
    assert "exporting into" in caplog.text
    texts = ["How do I rotate the logs?", "Backups run nightly."]
    cosines = (np.array(made.embed(texts)) * np.array(int8.embed(texts))).sum(axis=1)
    assert cosines.min() > 0.999


def test_a_reindex_under_auto_converts_an_fp32_collection_to_int8(
    built: Settings, auto: Embedder, int8: Embedder
) -> None:
    from app.components import open_database
    from ingest.reindex import Reindexer

    db = open_database(built)
    vectors = open_vectors(built, writer=True)
    try:
        chunking = Chunking(built.ingest.chunk_tokens, built.ingest.chunk_overlap)
        summary = Reindexer(db, vectors, chunking=chunking).run("docs", auto)
        record = vectors.target("docs").record
        hits = Retriever(auto, vectors, "docs", top_k=3, min_score=0).search_sync(
            "How do I back up?"
        )
    finally:
        vectors.close()
        db.close()
    # The shadow is a new collection: built with int8, and served with it after the swap.
    assert record is not None
    assert record.model == int8.identity
    assert "int8" in summary.model
    assert hits


def test_a_collection_of_the_first_int8_variant_is_still_served_by_auto(
    tmp_path: Path, auto: Embedder, int8: Embedder
) -> None:
    # Built with per-tensor int8 scales, as `onnx-int8` did before per-channel ones: auto
    # runs that variant for it; the per-channel model is refused on it, naming both.
    first = auto.variant_for(
        IndexRecord(replace(auto.identity, variant="int8", backend="onnx-int8"))
    )
    assert first.identity.variant == "int8"
    texts = ["How do I rotate the logs?", "Backups run nightly."]
    cosines = (np.array(first.embed(texts)) * np.array(int8.embed(texts))).sum(axis=1)
    assert cosines.max() < 0.9999  # other vectors than the per-channel variant's
    settings = make_settings(tmp_path / "data")
    ingest_into(settings, first, CORPUS / "guide.md")
    vectors = open_vectors(settings, writer=False)
    try:
        record = vectors.target("docs").record
        assert record is not None
        assert record.model.variant == "int8"
        opening = (CORPUS / "guide.md").read_text()[:300]
        hits = Retriever(auto, vectors, "docs", top_k=3, min_score=0).search_sync(opening)
        assert hits[0].metadata["source"] == "guide.md"
        assert hits[0].score > 0.8  # the query embedded by the collection's own variant
        with pytest.raises(EmbeddingMismatch, match=r"int8\).*int8-channel\)"):
            Retriever(int8, vectors, "docs", top_k=3, min_score=0).search_sync("x")
    finally:
        vectors.close()
