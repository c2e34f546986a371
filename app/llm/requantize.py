"""llama.cpp's quantizer: a GGUF file written again with its weights in another type.

A catalog model can be made from another on this machine instead of downloaded
(`CatalogModel.made_from`): BF16 from the published Q4_K_M holds the same weights
(each dequantized value rounded to bfloat16) and is evaluated by the AVX512-BF16 kernels
about twice as fast on such CPUs (docs/performance.md, "The weight type").
"""

from __future__ import annotations

import ctypes
from pathlib import Path


def requantize(source: Path, target: Path, file_type: str, threads: int = 2) -> None:
    """`source` written to `target` with its weights in `file_type` (llama.h's
    LLAMA_FTYPE_MOSTLY_<file_type>: BF16, F16, Q8_0, Q4_0, IQ4_NL...); RuntimeError when
    llama.cpp refuses. The result depends only on the source file and llama.cpp's
    version (no importance matrix, no randomness), so it can be pinned by its hash."""
    from app.llm.cpu_backends import load_cpu_backend

    load_cpu_backend()  # the all-variants build has no CPU backend until one is loaded
    import llama_cpp as ll

    params = ll.llama_model_quantize_default_params()
    params.ftype = getattr(ll, f"LLAMA_FTYPE_MOSTLY_{file_type.upper()}")
    params.allow_requantize = True
    params.nthread = threads
    failed = ll.llama_model_quantize(
        str(source).encode(), str(target).encode(), ctypes.byref(params)
    )
    if failed:
        raise RuntimeError(f"llama.cpp could not write {source.name} as {file_type}")
