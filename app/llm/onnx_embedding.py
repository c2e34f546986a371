"""The embedding model on ONNX Runtime: exported once from the installed weights.

The export is a plain `torch.onnx.export` of the model's transformer (opset 17, the
TorchScript exporter, batch and sequence axes dynamic), made offline from the folder
that sentence-transformers loaded; the int8 variant is ONNX Runtime's dynamic
quantization of that file. Both are cached by the weights hash, so they are made once
per model. Pooling (mean or CLS, as the model's pooling config says) and normalizing
are done here, in numpy, as sentence-transformers does them.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from app.llm.hardware import default_threads
from app.llm.length_batches import batches

log = logging.getLogger(__name__)
OPSET = 17


def _cache_root(cache_dir: Path | None) -> Path:
    if cache_dir is not None:
        return cache_dir / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "docchat" / "onnx"  # as app.llm.embedder.user_cache_dir


def _export(model: Any, path: Path) -> None:
    """Write the transformer of a SentenceTransformer as ONNX (last hidden state)."""
    import torch

    transformer = model[0].auto_model.eval()
    inputs = ["input_ids", "attention_mask", "token_type_ids"]

    class Wrapped(torch.nn.Module):
        # transformers' forward takes keywords: pass them by name.
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
            )
            return out.last_hidden_state

    sample = model.tokenizer(["an example sentence"], return_tensors="pt")
    args = tuple(sample.get(name, torch.zeros_like(sample["input_ids"])) for name in inputs)
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        draft = Path(tmp) / path.name
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes it keeps dynamic
            torch.onnx.export(
                Wrapped(),
                args,
                str(draft),
                input_names=inputs,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        os.replace(draft, path)


# What each variant's file is: the fp32 export, or a dynamic int8 quantization of it.
# Per-channel weight scales keep the vectors at cosine 0.994 to fp32 on average, against
# 0.943 for one scale per tensor (the first int8 variant, still served for collections
# built with it), at the same speed: docs/performance.md.
FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "int8-channel": "model.int8-channel.onnx"}


def _quantize(source: Path, path: Path, *, per_channel: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        draft = Path(tmp) / path.name
        quantize_dynamic(
            str(source), str(draft), weight_type=QuantType.QInt8, per_channel=per_channel
        )
        os.replace(draft, path)


def _make(model: Any, model_path: Path, root: Path, variant: str) -> None:
    """The export (and the variant's quantization of it) in `root`, unless already there."""
    fp32 = root / FILES["fp32"]
    if not fp32.is_file():
        log.info("exporting %s to ONNX (once per model) into %s", model_path, fp32)
        _export(model, fp32)
    path = root / FILES[variant]
    if not path.is_file():
        log.info("quantizing the ONNX export (%s) into %s", variant, path)
        _quantize(fp32, path, per_channel=variant == "int8-channel")


def export_path(
    model: Any, model_path: Path, sha256: str, variant: str, cache_dir: Path | None
) -> Path:
    """The model's ONNX export in `variant` (fp32, int8, int8-channel), made and cached
    on first use."""
    root = _cache_root(cache_dir) / sha256[:16]
    path = root / FILES[variant]
    if not path.is_file():
        try:
            _make(model, model_path, root, variant)
        except OSError as exc:
            # A read-only cache (e.g. one baked into an image, used with another
            # model): made in a temporary folder instead, again at each start.
            fallback = Path(tempfile.gettempdir()) / "docchat-onnx" / sha256[:16]
            log.warning("cannot write %s (%s): exporting into %s", root, exc, fallback)
            _make(model, model_path, fallback, variant)
            path = fallback / FILES[variant]
    return path


class OnnxEncoder:
    """Tokenize, run the ONNX graph, pool and normalize."""

    def __init__(
        self, session: Any, tokenizer: Any, max_length: int, pooling: str, inputs: list[str]
    ) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pooling = pooling
        self.inputs = inputs

    @classmethod
    def load(
        cls,
        model: Any,
        model_path: Path,
        sha256: str,
        *,
        variant: str,
        cache_dir: Path | None,
        threads: int | None = None,
    ) -> OnnxEncoder:
        """The model's ONNX export in `variant` (fp32, int8, int8-channel), made and
        cached on first use, on ONNX Runtime."""
        import onnxruntime as ort

        pooling = cls._pooling(model)
        path = export_path(model, model_path, sha256, variant, cache_dir)
        options = ort.SessionOptions()
        # ONNX Runtime's own default counts the machine's cores, not what the cgroup's
        # quota or the affinity leave this process: those, where they leave fewer.
        usable = default_threads()
        if threads or usable < (os.cpu_count() or 1):
            options.intra_op_num_threads = threads or usable
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        inputs = [i.name for i in session.get_inputs()]
        return cls(session, model.tokenizer, int(model.max_seq_length), pooling, inputs)

    @staticmethod
    def _pooling(model: Any) -> str:
        modules = list(model)
        pool = modules[1] if len(modules) > 1 else None
        mode = str(getattr(pool, "pooling_mode", "") or "")
        if not mode:  # older sentence-transformers: flags
            config = pool.get_config_dict() if pool is not None else {}
            mode = "cls" if config.get("pooling_mode_cls_token") else "mean"
        if mode not in ("mean", "cls"):
            raise ValueError(
                f"the ONNX embedding backend supports mean and CLS pooling, not {mode!r}: "
                "use embedding.backend=torch for this model"
            )
        return mode

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Unit vectors for `texts`, in order; batches of texts of similar length."""
        out: np.ndarray | None = None
        for picked in batches(self.tokenizer, texts, self.max_length, batch_size):
            vectors = self._batch([texts[i] for i in picked])
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[picked] = vectors
        assert out is not None
        return out

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """The last hidden state of one batch."""
        hidden: np.ndarray = self.session.run(None, feed)[0]
        return hidden

    def _batch(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="np",
        )
        feed = {}
        for name in self.inputs:
            value = encoded.get(name)
            if value is None:
                value = np.zeros_like(encoded["input_ids"])
            feed[name] = value.astype(np.int64)
        hidden = self._run(feed)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = np.asarray(encoded["attention_mask"], dtype=np.float32)[..., None]
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: np.ndarray = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return unit
