"""The embedding model's ONNX export run by OpenVINO in bf16, on a CPU with bf16
instructions (embedding.precision's bf16, setting embedding.bf16_runtime).

The same fp32 export that ONNX Runtime runs (app/llm/onnx_embedding.py), compiled by
OpenVINO's CPU plugin with bf16 as its inference precision: matrix products in bf16
(AVX512-BF16, AMX), with its fused attention, where PyTorch's autocast runs the
attention through kernels too narrow for the model's 32-wide heads. The vectors stay
those of fp32 (cosine > 0.9999, the same collections), 1.2-1.3x faster than PyTorch's
autocast on two cores (docs/performance.md, "OpenVINO for bf16"). Tokenizing, pooling
and normalizing are the ONNX encoder's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.llm.hardware import default_threads
from app.llm.onnx_embedding import OnnxEncoder, export_path


class OpenVinoEncoder(OnnxEncoder):
    """Tokenize, run the compiled export, pool and normalize (one batch at a time: the
    caller's lock keeps the one inference request to one thread)."""

    @classmethod
    def load(
        cls,
        model: Any,
        model_path: Path,
        sha256: str,
        *,
        variant: str = "fp32",
        cache_dir: Path | None,
        threads: int | None = None,
    ) -> OpenVinoEncoder:
        """The fp32 export (made and cached on first use) compiled for this CPU in bf16.
        ImportError where openvino is not installed."""
        import openvino as ov

        pooling = cls._pooling(model)
        path = export_path(model, model_path, sha256, variant, cache_dir)
        core = ov.Core()
        compiled = core.compile_model(
            str(path),
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": "bf16",
                # One request at a time, on every core the process may use (not the
                # machine's count: a cgroup's quota or the affinity may leave fewer).
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_NUM_THREADS": threads or default_threads(),
            },
        )
        inputs = [port.get_any_name() for port in compiled.inputs]
        return cls(
            compiled.create_infer_request(),
            model.tokenizer,
            int(model.max_seq_length),
            pooling,
            inputs,
        )

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        # The request's output buffer is reused by the next batch: pooled before then.
        hidden: np.ndarray = self.session.infer(feed)[0]
        return hidden
