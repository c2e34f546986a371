"""sentence-transformers, behind the one interface ingest and retrieval both use."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

# The model is a local folder; never let a library reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class Embedder:
    """Embeds texts into unit vectors and counts tokens the way the model sees them."""

    def __init__(self, model_path: Path, *, device: str = "cpu", batch_size: int = 32) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_path = model_path
        self.name = model_path.name if model_path.name != "model" else model_path.parent.name
        self.batch_size = batch_size
        self._model: Any = SentenceTransformer(str(model_path), device=device)
        self._tokenizer: Any = self._model.tokenizer
        # torch modules are not documented as thread-safe for concurrent forward passes.
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        return int(self._model.get_sentence_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads; the rest of a longer text is ignored."""
        return int(self._model.max_seq_length)

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Normalized embeddings, so a dot product is the cosine similarity."""
        if not texts:
            return []
        with self._lock:
            vectors = self._model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
        return [list(map(float, v)) for v in vectors]

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces of each text, without the special tokens the model adds."""
        if not texts:
            return []
        encoded = self._tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]
