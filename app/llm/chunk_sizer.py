"""How many prompt tokens a batching step evaluates beside the running answers, learnt
from the steps before (prefill_chunk="auto")."""

from __future__ import annotations

# Bounds of a learnt chunk: below 16 tokens a step's fixed cost dominates and a long
# prompt would take hundreds of steps; above n_batch a step is more than one decode.
MIN_CHUNK = 16
FIRST_CHUNK = 32


class ChunkSizer:
    """The prompt chunk that keeps a mixed step (running answers' tokens plus a chunk of
    a new prompt) near `target_s`: the gap every running answer sees between two tokens.

    After each mixed step the chunk moves halfway to the size that step would have
    needed to last the target (its prompt tokens scaled by target / duration). A step's
    cost is its decode rows plus the chunk, so this settles where the whole step meets
    the target, on any model and machine, and follows a machine that slows down."""

    def __init__(self, target_s: float, n_batch: int) -> None:
        self.target_s = target_s
        self.most = max(MIN_CHUNK, n_batch)
        self._chunk = float(FIRST_CHUNK)
        self.observed = 0  # mixed steps learnt from

    @property
    def chunk(self) -> int:
        return round(self._chunk)

    @property
    def learnt(self) -> float:
        """The chunk before rounding: where the steps timed so far have moved it."""
        return self._chunk

    def observe(self, prompt_tokens: int, seconds: float) -> None:
        """Learn from a step that evaluated `prompt_tokens` beside the decode rows."""
        wanted = prompt_tokens * self.target_s / max(seconds, 1e-3)
        self.observed += 1
        self._chunk = min(self.most, max(MIN_CHUNK, (self._chunk + wanted) / 2))
