"""Each collection records the embedding model and chunking it was built with; another
model or chunking is refused with both named. Real models, real Chroma, SQLite."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.components import build_components, open_vectors
from app.llm.embedder import Embedder
from app.llm.provision import default_embedding_model
from app.rag.retrieval import Retriever
from app.settings import Settings
from app.store.index_record import Chunking, EmbeddingMismatch
from tests.conftest import CORPUS, Models, ingest_into, make_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX export for the session (it takes seconds)."""
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def int8(embedding_cache: Path) -> Embedder:
    """The same model quantized to int8: other vectors, so another embedding model."""
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
    more = tmp_path / "more"
    more.mkdir()
    shutil.copy(CORPUS / "notes.txt", more)
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
