"""What a GGUF file says about itself: architecture, size, quantization, context length,
whether it carries a chat template. llama.cpp reads the metadata and vocabulary only
(a fraction of a second), never the weights."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from pathlib import Path

GGUF_MAGIC = b"GGUF"
META_VALUE_BYTES = 1 << 16  # a chat template can be long
# The metadata keys (after "ARCH.") that fix the shape of the weights.
DIMENSIONS = (
    "block_count",
    "embedding_length",
    "attention.head_count",
    "attention.head_count_kv",
)


class NotAModel(ValueError):
    """The file is not a GGUF model docchat can use; the message says why."""


@dataclass(frozen=True)
class GGUFInfo:
    """The metadata of one GGUF file."""

    architecture: str
    name: str
    parameters: int
    quantization: str
    context_length: int | None
    chat_template: bool
    license: str
    # Layers, embedding width, attention heads: what an adapter must match.
    dimensions: dict[str, int] = field(default_factory=dict)


def _file_types() -> dict[int, str]:
    import llama_cpp as ll

    return {
        int(getattr(ll, name)): name.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_")
        for name in dir(ll)
        if name.startswith("LLAMA_FTYPE_") and isinstance(getattr(ll, name), int)
    }


def read_info(path: Path) -> GGUFInfo:
    """The file's metadata; NotAModel if llama.cpp cannot read it as a model."""
    import llama_cpp as ll
    from llama_cpp import _logger  # llama-cpp-python's log switch (its Llama uses it too)

    with path.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise NotAModel(f"{path.name} is not a GGUF file (no GGUF header)")
    _logger.set_verbose(False)
    params = ll.llama_model_default_params()
    params.vocab_only = True
    model = ll.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        raise NotAModel(f"{path.name}: llama.cpp cannot read it as a model")
    try:
        meta = {}
        buffer = ctypes.create_string_buffer(META_VALUE_BYTES)
        for index in range(ll.llama_model_meta_count(model)):
            ll.llama_model_meta_key_by_index(model, index, buffer, len(buffer))
            key = buffer.value.decode("utf-8", "replace")
            ll.llama_model_meta_val_str_by_index(model, index, buffer, len(buffer))
            meta[key] = buffer.value.decode("utf-8", "replace")
        parameters = int(ll.llama_model_n_params(model))
    finally:
        ll.llama_model_free(model)
    if meta.get("general.type", "model") != "model":
        raise NotAModel(f"{path.name} is a GGUF {meta['general.type']}, not a model")
    architecture = meta.get("general.architecture", "")
    context = meta.get(f"{architecture}.context_length")
    file_type = meta.get("general.file_type")
    return GGUFInfo(
        architecture=architecture,
        name=meta.get("general.name", path.stem),
        parameters=parameters,
        quantization=_file_types().get(int(file_type), file_type) if file_type else "",
        context_length=int(context) if context and context.isdigit() else None,
        chat_template=bool(meta.get("tokenizer.chat_template")),
        license=meta.get("general.license", ""),
        dimensions={
            key: int(meta[f"{architecture}.{key}"])
            for key in DIMENSIONS
            if meta.get(f"{architecture}.{key}", "").isdigit()
        },
    )
