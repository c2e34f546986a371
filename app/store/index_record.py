"""What a collection was built with: the embedding model and the chunking settings.

The record lives in the Chroma collection's own metadata, so it travels with the
vectors on both stores (embedded and server). Vectors are only comparable with vectors
of the same model: a query embedded by another model, or chunks added by another one,
would rank silently worse. Every reader and writer compares its model with the record
and refuses a different one with both names (`EmbeddingMismatch`).

Which models are "the same": the weights hash (sha256 over the model folder's weight,
tokenizer and config files), the dimension and the numeric variant. The same weights in
fp32 give the same vectors whether PyTorch or ONNX Runtime runs them (cosine 1.0000
measured), so the runtime is recorded but not compared; int8 weights give different
vectors (cosine ~0.994 to fp32 with per-channel scales, `int8-channel`; ~0.94 with one
scale per tensor, `int8`, the first variant), so `variant` is compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import DocchatError, Kind

PREFIX = "docchat:"


@dataclass(frozen=True)
class EmbeddingIdentity:
    """One embedding model as the vectors depend on it."""

    name: str
    sha256: str  # over the model folder's weight, tokenizer and config files
    dimension: int
    # fp32, int8-channel or int8 (the first, per-tensor int8): each gives other vectors
    variant: str = "fp32"
    backend: str = "torch"  # what ran it (torch, onnx): recorded, not compared
    path: str = ""  # where it was loaded from, so a server can load it to follow a swap

    @property
    def space(self) -> tuple[str, int, str]:
        """What must be equal for two sets of vectors to be comparable."""
        return (self.sha256, self.dimension, self.variant)

    def describe(self) -> str:
        """One line naming it, e.g. all-MiniLM-L6-v2 (sha256 53aa5172d1c4, 384 dims, fp32)."""
        return f"{self.name} (sha256 {self.sha256[:12]}, {self.dimension} dims, {self.variant})"


@dataclass(frozen=True)
class Chunking:
    """The chunking settings the collection's chunks were cut with."""

    tokens: int
    overlap: int

    def describe(self) -> str:
        return f"chunks of {self.tokens} tokens with {self.overlap} overlap"


@dataclass(frozen=True)
class IndexRecord:
    """What a collection's vectors were built with."""

    model: EmbeddingIdentity
    chunking: Chunking | None = None

    def to_metadata(self) -> dict[str, Any]:
        """Chroma collection metadata (flat str/int values)."""
        m = self.model
        meta: dict[str, Any] = {
            f"{PREFIX}model": m.name,
            f"{PREFIX}sha256": m.sha256,
            f"{PREFIX}dimension": m.dimension,
            f"{PREFIX}variant": m.variant,
            f"{PREFIX}backend": m.backend,
            f"{PREFIX}model_path": m.path,
        }
        if self.chunking is not None:
            meta[f"{PREFIX}chunk_tokens"] = self.chunking.tokens
            meta[f"{PREFIX}chunk_overlap"] = self.chunking.overlap
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, Any] | None) -> IndexRecord | None:
        """The record in a collection's metadata, or None for a collection from before
        records existed."""
        meta = meta or {}
        if f"{PREFIX}sha256" not in meta:
            return None
        model = EmbeddingIdentity(
            name=str(meta.get(f"{PREFIX}model", "")),
            sha256=str(meta[f"{PREFIX}sha256"]),
            dimension=int(meta.get(f"{PREFIX}dimension", 0)),
            variant=str(meta.get(f"{PREFIX}variant", "fp32")),
            backend=str(meta.get(f"{PREFIX}backend", "torch")),
            path=str(meta.get(f"{PREFIX}model_path", "")),
        )
        chunking = None
        if f"{PREFIX}chunk_tokens" in meta:
            chunking = Chunking(
                int(meta[f"{PREFIX}chunk_tokens"]), int(meta.get(f"{PREFIX}chunk_overlap", 0))
            )
        return cls(model, chunking)


class EmbeddingMismatch(DocchatError, RuntimeError):
    """A collection is used with another embedding model (or chunking) than it was
    built with: nothing can be answered from it until the settings or the collection
    change (no use retrying)."""

    kind = Kind.UNAVAILABLE
    code = "embedding_mismatch"

    def __init__(
        self,
        collection: str,
        record: IndexRecord,
        model: EmbeddingIdentity,
        chunking: Chunking | None = None,
    ) -> None:
        self.collection = collection
        self.record = record
        self.model = model
        if record.model.space != model.space:
            what = (
                f"collection {collection!r} was embedded with {record.model.describe()}, "
                f"but the embedding model in use is {model.describe()}: their vectors "
                "cannot be compared. Re-embed the collection with "
                f"`docchat reindex --collection {collection} --embedding PATH --backend "
                "NAME` (it keeps serving meanwhile), or set embedding.model_path / "
                "embedding.backend to the model it was built with"
                + (
                    " (embedding.backend=auto serves every variant of the same weights)."
                    if record.model.sha256 == model.sha256
                    else "."
                )
            )
        else:
            built = record.chunking.describe() if record.chunking else "unknown chunking"
            now = chunking.describe() if chunking else "unknown chunking"
            what = (
                f"collection {collection!r} was cut into {built}, but ingest.chunk_tokens / "
                f"chunk_overlap now say {now}: set them back, or ingest into a new "
                "collection with the new settings."
            )
        super().__init__(what)
