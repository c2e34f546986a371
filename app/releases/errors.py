"""What a release request can run into; each message says why and what to do, and each
error says what it means (common/errors.py), so a front shows it without a mapping of
its own."""

from __future__ import annotations

from common.errors import DocchatError, Kind


class RegistryError(DocchatError, ValueError):
    """A release request that cannot be done in the registry's present state."""

    kind = Kind.CONFLICT
    code = "model_unusable"


class NotRegistered(RegistryError):
    """No model, or no adapter, of that name."""

    kind = Kind.NOT_FOUND
    code = "not_found"


class ModelFileChanged(RegistryError):
    """A registered file (a model's, an adapter's) is missing or its bytes no longer
    match the hash it was registered with."""


class IncompatibleAdapter(RegistryError):
    """An adapter that was not trained on this base model."""

    code = "incompatible_adapter"

    def __init__(self, adapter: str, model: str, reasons: list[str]) -> None:
        super().__init__(
            f"adapter {adapter!r} cannot be served on model {model!r}: " + "; ".join(reasons)
        )
        self.reasons = reasons


class GateRefused(RegistryError):
    """The candidate answers worse than what it would replace (or cannot chat)."""

    code = "gate_refused"

    def __init__(self, kind: str, name: str, reasons: list[str]) -> None:
        super().__init__(f"{kind} {name!r} refused: " + "; ".join(reasons))
        self.reasons = reasons
