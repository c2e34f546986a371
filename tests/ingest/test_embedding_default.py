"""The default embedding backend (fp32 on ONNX Runtime) gives torch's vectors on real
text, and where ONNX Runtime cannot run, torch stands in with a warning. Real models."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from app.components import load_embedder
from app.llm.embedder import Embedder
from app.llm.provision import default_embedding_model
from app.settings import Settings
from ingest.chunking import Chunker, embedding_text
from ingest.loaders import load_file
from tests.conftest import Models, make_settings

pytestmark = pytest.mark.slow
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Default settings with an empty export cache: the first run's export included."""
    root = tmp_path_factory.mktemp("default-embedding")
    return make_settings(root / "data", embedding={"cache_dir": root / "cache"})


def real_chunks(models: Models, limit: int = 160) -> list[str]:
    """Chunks of docchat's own documentation, as ingest embeds them."""
    chunker = Chunker(models.embedder.count_tokens, max_tokens=200, overlap=32)
    texts = []
    for path in sorted(DOCS.glob("*.md")):
        doc = load_file(path)
        texts += [embedding_text(doc.title, d.section, d.text) for d in chunker.chunk(doc)]
    assert len(texts) >= limit
    return texts[::3][:limit]  # spread over the pages


def test_the_default_backend_gives_the_torch_vectors(settings: Settings, models: Models) -> None:
    default = load_embedder(settings)
    assert settings.embedding.backend == "onnx"
    assert default.identity.backend == "onnx"
    texts = real_chunks(models)
    cosines = (np.array(default.embed(texts)) * np.array(models.embedder.embed(texts))).sum(axis=1)
    assert cosines.min() >= 1 - 1e-4
    # The same embedding model for a collection's record: torch and onnx interchange.
    assert default.identity.space == models.embedder.identity.space


def test_without_onnx_runtime_the_default_embeds_with_torch_and_says_so(
    settings: Settings,
    models: Models,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Makes `import onnxruntime` fail, as on a machine without it: the real package is
    # installed here, so only a stand-in provokes this.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with caplog.at_level(logging.WARNING, logger="app.llm.embedder"):
        fallback = load_embedder(settings)
    assert fallback.identity.backend == "torch"
    assert "embedding with torch instead" in caplog.text
    texts = ["How do I restore a backup?", "vacuum reclaims storage " * 40]
    assert np.allclose(fallback.embed(texts), models.embedder.embed(texts), atol=1e-6)
    # int8 vectors are other vectors: no stand-in, the error stands.
    with pytest.raises(ImportError):
        Embedder(
            default_embedding_model(),
            backend="onnx-int8",
            cache_dir=settings.embedding.cache_dir,
        )
