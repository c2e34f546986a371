"""The embedding model, behind the one interface ingest and retrieval both use.

The backends that run the same sentence-transformers folder (setting embedding.backend):

- `torch`: sentence-transformers on PyTorch, fp32 (the reference).
- `onnx`: the same weights exported once to ONNX (torch.onnx.export, from the installed
  folder, offline) and run by ONNX Runtime, fp32: the same vectors (cosine > 0.999 to
  torch), faster on CPU; the same embedding model for a collection's record.
- `onnx-int8`: that export with int8 dynamic quantization of its weights (one scale per
  output channel): faster again, but other vectors (cosine ~0.994 to fp32), so another
  embedding model for the record (variant `int8-channel`): a collection built with one
  cannot be queried with the other.
- `auto`: each collection is embedded in the variant it was built with
  (fp32 on torch; `int8-channel`, or `int8` (per-tensor scales) for a collection built
  with the first int8 variant, on ONNX Runtime), and a new one is built with
  `int8-channel` on the CPU: docs/performance.md. `variant_for` picks, per collection.

Every backend sorts a call's texts by their length in tokens before batching, so a
batch pads to texts of similar length (app/llm/length_batches.py; sentence-transformers'
own sort, by characters, left a quarter of a batch's tokens padding on real manuals).

The fp32 variant (`torch`, `onnx`, `auto`'s fp32 collections) may run in bf16 instead
(setting embedding.precision): PyTorch's autocast does the matrix products in bf16 and
keeps sums, softmax and norms in fp32, so the vectors stay those of fp32 (cosine
> 0.9999) and it serves the same collections. On a CPU with bf16 instructions
(AVX512-BF16, AMX) a matrix product runs ~2.8x faster than in fp32 and embedding 1.6-1.9x
faster than ONNX Runtime's fp32: the fp32 embedding runs at the CPU's fp32 peak already
(docs/performance.md). On such a CPU the bf16 variant runs on OpenVINO where it is
installed (app/llm/openvino_embedding.py; setting embedding.bf16_runtime): the same
export compiled in bf16, the same vectors again, 1.2-1.3x faster than autocast.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from app.llm.length_batches import batches
from app.store.index_record import EmbeddingIdentity, EmbeddingMismatch, IndexRecord
from common.files import write_atomically

# What the checks need of an embedder: texts in, unit vectors out.
Embed = Callable[[list[str]], list[list[float]]]

# The model is a local folder; never let a library reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

log = logging.getLogger(__name__)

EMBEDDING_BACKENDS = ("auto", "torch", "onnx", "onnx-int8")
PRECISIONS = ("auto", "fp32", "bf16")
# What runs the fp32 variant in bf16 on a CPU: `auto`, OpenVINO where installed.
BF16_RUNTIMES = ("auto", "openvino", "torch")
# CPU flags (/proc/cpuinfo) of native bf16 matrix products; without them bf16 is emulated.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
# The variant each explicit backend embeds in; `auto` serves every one of these.
VARIANTS = {"torch": "fp32", "onnx": "fp32", "onnx-int8": "int8-channel"}
QUANTIZED = ("int8-channel", "int8")  # what `auto` runs on ONNX Runtime; the first is for new
# What the vectors depend on; READMEs and training-data listings are left out.
_HASHED_NAMES = frozenset(
    {
        "config.json",
        "config_sentence_transformers.json",
        "modules.json",
        "sentence_bert_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
    }
)
_HASHED_SUFFIXES = (".safetensors", ".bin", ".model")
_SKIPPED_DIRS = frozenset({"onnx", "openvino", ".git"})


def _hashed_files(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or _SKIPPED_DIRS.intersection(rel.parts[:-1]):
            continue
        if path.name in _HASHED_NAMES or path.suffix in _HASHED_SUFFIXES:
            found.append(path)
    return found


def weights_sha256(folder: Path, cache_dir: Path | None = None) -> str:
    """sha256 over the folder's weight, tokenizer and config files (names and bytes),
    cached in `cache_dir` by path, size and modification time: computed once."""
    folder = folder.resolve()
    files = _hashed_files(folder)
    if not files:
        raise ValueError(f"no model weights in {folder}")
    stamp = [[str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    cache = cache_dir / "weights-sha256.json" if cache_dir else None
    known: dict[str, Any] = {}
    if cache is not None and cache.is_file():
        try:
            known = json.loads(cache.read_text())
        except (OSError, ValueError):
            known = {}
    entry = known.get(str(folder))
    if isinstance(entry, dict) and entry.get("files") == stamp:
        return str(entry["sha256"])
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    sha = digest.hexdigest()
    if cache is not None:
        known[str(folder)] = {"files": stamp, "sha256": sha}
        _write_cache(cache, json.dumps(known, indent=1))
    return sha


def _write_cache(path: Path, text: str) -> None:
    try:
        write_atomically(path, text.encode())
    except OSError as exc:  # a read-only cache only costs the hash again next time
        log.warning("cannot write %s: %s", path, exc)


def user_cache_dir() -> Path:
    """Where exports and hashes are kept by default: one per machine and user
    ($XDG_CACHE_HOME/docchat, else ~/.cache/docchat), so every data dir shares them;
    a temporary folder when that cannot be written."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "docchat"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe")  # noqa: SIM115
        probe.close()
    except OSError:
        path = Path(tempfile.gettempdir()) / "docchat-cache"
        path.mkdir(parents=True, exist_ok=True)
    return path


def native_bf16() -> bool:
    """Whether this CPU does bf16 matrix products itself."""
    from app.llm.hardware import cpu_flags

    return bool(BF16_FLAGS & cpu_flags())


def use_bf16(precision: str, device: str) -> bool:
    """Whether to embed the fp32 variant in bf16: asked for, or `auto` on a CPU that has
    native bf16 (elsewhere it would be emulated, slower than fp32)."""
    if precision == "fp32":
        return False
    native = native_bf16()
    if precision == "bf16":
        if device == "cpu" and not native:
            log.warning(
                "embedding.precision=bf16 on a CPU without bf16 instructions (%s): "
                "emulated, likely slower than fp32",
                ", ".join(sorted(BF16_FLAGS)),
            )
        return True
    return device == "cpu" and native


def model_name(model_path: Path) -> str:
    """The model's name: its folder's, or the parent's for a folder called `model`."""
    return model_path.name if model_path.name != "model" else model_path.parent.name


class Embedder:
    """Embeds texts into unit vectors and counts tokens the way the model sees them."""

    def __init__(
        self,
        model_path: Path,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        backend: str = "torch",
        cache_dir: Path | None = None,
        threads: int | None = None,
        precision: str = "fp32",
        bf16_runtime: str = "auto",
    ) -> None:
        from sentence_transformers import SentenceTransformer

        if backend not in EMBEDDING_BACKENDS:
            raise ValueError(
                f"unknown embedding backend {backend!r}: use one of {EMBEDDING_BACKENDS}"
            )
        if precision not in PRECISIONS:
            raise ValueError(f"unknown embedding precision {precision!r}: use one of {PRECISIONS}")
        if bf16_runtime not in BF16_RUNTIMES:
            raise ValueError(f"unknown bf16 runtime {bf16_runtime!r}: use one of {BF16_RUNTIMES}")
        self.model_path = model_path
        self.name = model_name(model_path)
        self.batch_size = batch_size
        # auto runs fp32 on torch and keeps an int8 twin for new and int8 collections;
        # int8 ONNX is a CPU runtime, so a GPU device keeps torch for every collection.
        self._auto = backend == "auto" and device == "cpu"
        backend = "torch" if backend == "auto" else backend
        if backend == "onnx" and device != "cpu":
            # The ONNX session runs on the CPU; torch gives the same vectors on the device.
            backend = "torch"
        # bf16 runs the fp32 variant on torch (autocast); int8 stays on ONNX Runtime.
        self._bf16 = backend in ("torch", "onnx") and use_bf16(precision, device)
        if self._bf16:
            backend = "torch"
        self.backend = backend
        self._device = device
        self._model: Any = SentenceTransformer(str(model_path), device=device)
        # count_tokens has a tokenizer of its own: ingest counts in one thread while it
        # embeds in another, and a fast tokenizer shared between calls with and without
        # truncation can fail with "Already borrowed" when they meet (tokenizers#537).
        self._tokenizer: Any = copy.deepcopy(self._model.tokenizer)
        # torch modules are not documented as thread-safe for concurrent forward passes.
        self._lock = threading.Lock()
        # Other models loaded to follow a swap (see follow_swaps).
        self._load_other: Callable[[EmbeddingIdentity], Embedder] | None = None
        self._others: dict[tuple[str, int, str], Embedder] = {}
        self._others_lock = threading.Lock()
        cache_dir = cache_dir or user_cache_dir()
        sha = weights_sha256(model_path, cache_dir)
        self._cache_dir = cache_dir
        self._threads = threads
        self._twins: dict[str, Embedder] = {}
        self._onnx: Any = None
        runtime = backend
        if backend != "torch":
            self._onnx = self._load_onnx(backend, sha)
            if self._onnx is None:
                runtime = backend = self.backend = "torch"
        elif self._bf16:
            runtime = "torch-bf16"
            if bf16_runtime != "torch" and device == "cpu" and native_bf16():
                self._onnx = self._load_openvino(sha, asked=bf16_runtime == "openvino")
                runtime = "openvino-bf16" if self._onnx is not None else runtime
        self.identity = EmbeddingIdentity(
            name=self.name,
            sha256=sha,
            dimension=self.dimension,
            variant=VARIANTS[backend],
            backend=runtime,
            path=str(model_path.resolve()),
        )

    def _load_onnx(self, backend: str, sha: str) -> Any:
        """The ONNX Runtime encoder for `backend`; None for fp32 `onnx` where ONNX
        Runtime is missing or the export fails: torch gives the same vectors, slower, so
        that is a warning. onnx-int8 gives other vectors: no stand-in, the error stands."""
        try:
            from app.llm.onnx_embedding import OnnxEncoder

            return OnnxEncoder.load(
                self._model,
                self.model_path,
                sha,
                variant=VARIANTS[backend],
                cache_dir=self._cache_dir,
                threads=self._threads,
            )
        except Exception as exc:
            if backend != "onnx":
                raise
            log.warning(
                "embedding.backend=onnx cannot run here (%s: %s): embedding with torch "
                "instead, the same vectors, about half as fast (pip install onnxruntime)",
                type(exc).__name__,
                exc,
            )
            return None

    def _load_openvino(self, sha: str, *, asked: bool) -> Any:
        """The fp32 export compiled by OpenVINO in bf16; None where openvino is not
        installed or cannot compile it: PyTorch's autocast gives the same vectors,
        slower (a warning when embedding.bf16_runtime asked for openvino)."""
        try:
            from app.llm.openvino_embedding import OpenVinoEncoder

            return OpenVinoEncoder.load(
                self._model,
                self.model_path,
                sha,
                cache_dir=self._cache_dir,
                threads=self._threads,
            )
        except Exception as exc:
            log.log(
                logging.WARNING if asked or not isinstance(exc, ImportError) else logging.INFO,
                "embedding in bf16 with PyTorch's autocast, not OpenVINO (%s: %s): the same "
                "vectors, about 0.8x as fast",
                type(exc).__name__,
                exc,
            )
            return None

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        model = self._model
        get = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        return int(get())

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads; the rest of a longer text is ignored."""
        return int(self._model.max_seq_length)

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Normalized embeddings, so a dot product is the cosine similarity."""
        if not texts:
            return []
        with self._lock:
            if self._onnx is not None:
                vectors = self._onnx.encode(texts, self.batch_size)
            else:
                vectors = self._encode_torch(texts)
        return [list(map(float, v)) for v in vectors]

    def _encode_torch(self, texts: list[str]) -> Any:
        """sentence-transformers' vectors, in fp32 or under bf16 autocast."""
        import torch

        autocast: Any = contextlib.nullcontext()
        if self._bf16:
            autocast = torch.autocast(torch.device(self._device).type, dtype=torch.bfloat16)
        model = self._model
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        picks = batches(model.tokenizer, texts, self.max_tokens, self.batch_size)
        with torch.inference_mode(), autocast:
            for picked in picks:  # a call each: encode would sort them again, by characters
                vectors = model.encode(
                    [texts[i] for i in picked],
                    batch_size=len(picked),
                    normalize_embeddings=True,
                    show_progress_bar=False,
                    convert_to_tensor=True,
                )
                out[picked] = vectors.float().cpu().numpy()
        return out

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces of each text, without the special tokens the model adds."""
        if not texts:
            return []
        encoded = self._tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def variant_for(self, record: IndexRecord | None, *, new: bool = False) -> Embedder:
        """This model as a collection needs it. With backend `auto`: the int8 twin for
        a collection built with one of the int8 variants of these weights, or for a `new`
        one (empty, no record: `int8-channel`); this fp32 one otherwise (a collection
        from before records was built with fp32). Other backends: this one (for_index
        refuses or follows another model)."""
        if not self._auto:
            return self
        if record is None:
            return self._twin(QUANTIZED[0]) if new else self
        built = record.model
        ours = (built.sha256, built.dimension) == (self.identity.sha256, self.identity.dimension)
        if ours and built.variant in QUANTIZED:
            return self._twin(built.variant)
        return self

    def _twin(self, variant: str) -> Embedder:
        """The same weights run by the ONNX export in an int8 variant (made and cached
        on first use), sharing this one's tokenizer and lock."""
        with self._others_lock:
            twin = self._twins.get(variant)
            if twin is None:
                from app.llm.onnx_embedding import OnnxEncoder

                twin = copy.copy(self)
                twin._auto = False
                twin.backend = "onnx-int8"
                twin._onnx = OnnxEncoder.load(
                    self._model,
                    self.model_path,
                    self.identity.sha256,
                    variant=variant,
                    cache_dir=self._cache_dir,
                    threads=self._threads,
                )
                twin.identity = replace(self.identity, variant=variant, backend="onnx-int8")
                self._twins[variant] = twin
            return twin

    def follow_swaps(self, load: Callable[[EmbeddingIdentity], Embedder]) -> None:
        """Let `for_index` load another model that a served collection was rebuilt with
        (`docchat reindex --embedding`), from the path in the collection's record, the
        first time a query needs it: a server follows a swap without a restart. Without
        this (one-shot commands), another model is refused."""
        self._load_other = load

    def for_index(self, collection: str, record: IndexRecord | None) -> Embedder:
        """The model the collection was built with: this one (or any, for a collection
        with no record yet), another one loaded to follow a swap (`follow_swaps`), or
        EmbeddingMismatch naming both. A recorded model that is not on this machine, or
        whose files no longer hash the same, is refused."""
        own = self.variant_for(record)
        if record is None or record.model.space == own.identity.space:
            return own
        found = self._others.get(record.model.space)
        if found is not None:
            return found
        path = Path(record.model.path) if record.model.path else None
        if self._load_other is None or path is None or not path.is_dir():
            raise EmbeddingMismatch(collection, record, self.identity)
        with self._others_lock:
            found = self._others.get(record.model.space)
            if found is None:
                log.info(
                    "collection %r is now served by %s: loading it from %s",
                    collection,
                    record.model.describe(),
                    path,
                )
                found = self._load_other(record.model).variant_for(record)
                if found.identity.space != record.model.space:
                    raise EmbeddingMismatch(collection, record, found.identity)
                self._others[record.model.space] = found
            return found
