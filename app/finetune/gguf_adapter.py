"""A peft LoRA adapter written as the GGUF adapter file llama.cpp loads.

Tensor names follow llama.cpp's own converter (convert_lora_to_gguf.py): a Hugging
Face module such as `model.layers.3.self_attn.q_proj` becomes `blk.3.attn_q`, its
LoRA matrices `blk.3.attn_q.weight.lora_a` (rank x n_in) and `.lora_b` (n_out x rank),
stored as f32. For the llama architecture, the GGUF file of the base keeps the rows of
the q and k projections permuted for llama.cpp's rotary layout (transformers' GGUF
loader undoes that when it reads the base), so lora_b of q and k is permuted the same
way here, or the adapter would add its update to the wrong rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Architectures whose base files docchat can train for, and whether q/k are permuted.
PERMUTES_QK = {"llama": True, "qwen2": False}
LORA_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.default)?\.weight$"
)


class AdapterFormatError(ValueError):
    """The adapter cannot be written for this base (architecture, names, shapes)."""


@dataclass(frozen=True)
class BaseShape:
    """What of the base model decides an adapter's names and layout."""

    architecture: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    hidden_size: int


def permute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's rotary permutation of a q or k projection's output rows."""
    rows = weights.shape[0]
    return (
        weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def gguf_tensors(state: dict[str, Any], shape: BaseShape) -> dict[str, np.ndarray]:
    """peft's LoRA state dict (names → tensors or arrays) as GGUF adapter tensors."""
    import gguf

    if shape.architecture not in PERMUTES_QK:
        raise AdapterFormatError(
            f"architecture {shape.architecture!r} is not supported for adapters (supported: "
            f"{', '.join(PERMUTES_QK)})"
        )
    arch = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == shape.architecture)
    names = gguf.get_tensor_name_map(arch, shape.n_layers)
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        match = LORA_KEY.match(key)
        if match is None:
            raise AdapterFormatError(f"not a LoRA weight: {key}")
        module, ab = match["module"], match["ab"]
        target = names.get_name(module)
        if target is None:
            raise AdapterFormatError(f"no GGUF tensor for {module} in {shape.architecture}")
        array = np.ascontiguousarray(_numpy(value), dtype=np.float32)
        if ab == "B" and PERMUTES_QK[shape.architecture]:
            if target.endswith(".attn_q"):
                array = permute_rows(array, shape.n_heads)
            elif target.endswith(".attn_k"):
                array = permute_rows(array, shape.n_kv_heads)
        out[f"{target}.weight.lora_{ab.lower()}"] = np.ascontiguousarray(array)
    return out


def write_adapter(
    path: Path, state: dict[str, Any], shape: BaseShape, *, alpha: float, name: str
) -> Path:
    """Write the adapter to `path` (through a temporary file: never half-written)."""
    import gguf

    tensors = gguf_tensors(state, shape)
    if not tensors:
        raise AdapterFormatError("the adapter has no LoRA weights")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    writer = gguf.GGUFWriter(partial, shape.architecture)
    writer.add_string("general.type", "adapter")
    writer.add_string("general.name", name)
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(alpha))
    for tensor_name, array in sorted(tensors.items()):
        writer.add_tensor(tensor_name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(path)
    return path


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        return np.asarray(value.detach().to("cpu").float().numpy())
    return np.asarray(value)
