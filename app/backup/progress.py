"""How the long steps of create, verify and restore report their progress."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Where the steps report: a rich progress bar in the CLI, nothing in tests."""

    def stage(self, description: str, total: int | None) -> None:
        """A new step of `total` units (None: unknown)."""

    def advance(self, n: int) -> None:
        """`n` more units of the current step done."""


class Quiet:
    """Progress that reports nowhere."""

    def stage(self, description: str, total: int | None) -> None:
        """Nothing."""

    def advance(self, n: int) -> None:
        """Nothing."""
