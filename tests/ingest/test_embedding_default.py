"""The default embedding (fp32 on ONNX Runtime, or in bf16 on a CPU with bf16
instructions, run by OpenVINO or PyTorch's autocast) gives torch's fp32 vectors on real
text, and where ONNX Runtime or OpenVINO cannot run, torch stands in. Real models."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from app.components import load_embedder
from app.llm import hardware
from app.llm.embedder import BF16_FLAGS, Embedder, use_bf16
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
    assert settings.embedding.precision == "auto"
    native_bf16 = bool(BF16_FLAGS & hardware.cpu_flags())
    assert default.identity.backend == ("openvino-bf16" if native_bf16 else "onnx")
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
    fp32 = settings.model_copy(
        update={"embedding": settings.embedding.model_copy(update={"precision": "fp32"})}
    )
    with caplog.at_level(logging.WARNING, logger="app.llm.embedder"):
        fallback = load_embedder(fp32)
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


@pytest.mark.parametrize("runtime", ["torch", "openvino"])
def test_bf16_gives_the_fp32_vectors_of_the_same_collections(models: Models, runtime: str) -> None:
    if runtime == "openvino" and not BF16_FLAGS & hardware.cpu_flags():
        pytest.skip("OpenVINO runs bf16 only on a CPU with bf16 instructions")
    # Asked for explicitly, so autocast runs on any CPU (emulated where it has no bf16).
    bf16 = Embedder(
        default_embedding_model(), backend="onnx", precision="bf16", bf16_runtime=runtime
    )
    assert bf16.identity.backend == f"{runtime}-bf16"
    assert bf16.identity.space == models.embedder.identity.space  # serves fp32 collections
    texts = real_chunks(models, limit=60)
    vectors = np.array(bf16.embed(texts))
    cosines = (vectors * np.array(models.embedder.embed(texts))).sum(axis=1)
    assert cosines.min() >= 1 - 1e-4
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    # Pure bf16 weights (no autocast) would not hold this bound: cosine 0.998 was measured.


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (frozenset({"avx2", "avx512_bf16"}), "torch-bf16"),
        (frozenset({"amx_bf16", "amx_tile"}), "torch-bf16"),
        (frozenset({"avx2", "avx512f"}), "onnx"),
    ],
)
def test_auto_precision_follows_the_cpu(
    flags: frozenset[str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stand-in CPU flags: this machine has one CPU, the rule is about every other one.
    monkeypatch.setattr(hardware, "cpu_flags", lambda: flags)
    made = Embedder(
        default_embedding_model(), backend="onnx", precision="auto", bf16_runtime="torch"
    )
    assert made.identity.backend == expected
    # auto is a CPU choice: a GPU device keeps fp32 whatever the CPU has.
    assert not use_bf16("auto", "cuda")


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown embedding precision 'fp16'"):
        Embedder(default_embedding_model(), precision="fp16")


def test_without_openvino_bf16_runs_on_autocast(
    models: Models, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Makes `import openvino` fail, as where it is not installed (it is here, so only a
    # stand-in provokes this), on a CPU said to have bf16 instructions.
    monkeypatch.setitem(sys.modules, "openvino", None)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    with caplog.at_level(logging.INFO, logger="app.llm.embedder"):
        made = Embedder(default_embedding_model(), backend="onnx", precision="auto")
    assert made.identity.backend == "torch-bf16"
    assert [r.levelno for r in caplog.records if "not OpenVINO" in r.message] == [logging.INFO]
    assert made.identity.space == models.embedder.identity.space
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="app.llm.embedder"):
        asked = Embedder(default_embedding_model(), precision="auto", bf16_runtime="openvino")
    assert asked.identity.backend == "torch-bf16"
    assert [r.levelno for r in caplog.records if "not OpenVINO" in r.message] == [logging.WARNING]


def test_an_unknown_bf16_runtime_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown bf16 runtime 'ipex'"):
        Embedder(default_embedding_model(), bf16_runtime="ipex")
