"""Finished answers keep their KV cache in their sequence, for the next prompt that
starts the same way.

A follow-up question's prompt begins with the previous turn's prompt and answer
(app/chat/warm_turns.py builds it so when that is cheaper), so the sequence that wrote
the answer already holds all but the new tokens: the next prompt is given the free
sequence sharing the longest start with it, its cells past that start are dropped, and
only the rest is evaluated, as llama.cpp's own server does with its slots. The sequences
are bounded (`parallel` + `cache_sequences`); when none shares a useful start, the one
left longest ago is reused; a cache older than `cache_max_age_s` is cleared.

Used by the batch worker thread; `held` may be called from any thread (a lock).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

# Below this many shared tokens a kept cache is not worth keeping for its start (the
# cached system prompt gives as much): the sequence is reused from scratch instead.
MIN_REUSE = 16


@dataclass
class Kept:
    tokens: list[int]  # what the sequence's cells hold, position by position
    at: float  # when its answer ended (monotonic)


def shared_start(a: list[int], b: list[int]) -> int:
    """How many tokens two lists share from the start."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class KeptSequences:
    """The sequences no answer runs in, and what each still holds."""

    def __init__(self, seqs: list[int], max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self._free = list(seqs)
        self._kept: dict[int, Kept] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Sequences free for a new answer."""
        return len(self._free)

    @property
    def kept(self) -> int:
        """Free sequences that still hold a finished answer's cache."""
        return len(self._kept)

    def take(self, tokens: list[int]) -> tuple[int, int]:
        """A free sequence for `tokens` and how many of their first tokens it holds (at
        most all but the last, whose logits must be computed); 0: its cells are stale."""
        with self._lock:
            best, reused = -1, 0
            for seq in self._free:
                kept = self._kept.get(seq)
                if kept is not None:
                    n = min(shared_start(kept.tokens, tokens), len(tokens) - 1)
                    if n > reused:
                        best, reused = seq, n
            if reused < MIN_REUSE:
                # An empty one first, else the cache left longest ago.
                empty = [s for s in self._free if s not in self._kept]
                best = empty[0] if empty else min(self._free, key=lambda s: self._kept[s].at)
                reused = 0
            self._free.remove(best)
            self._kept.pop(best, None)
            return best, reused

    def give_back(self, seq: int, tokens: list[int] | None) -> None:
        """A sequence whose answer ended; `tokens`: what its cells hold (None: nothing
        worth keeping, e.g. after a failed decode)."""
        with self._lock:
            self._free.append(seq)
            self._free.sort()
            if tokens:
                self._kept[seq] = Kept(list(tokens), time.monotonic())

    def expired(self) -> list[int]:
        """Forget the caches older than max_age_s; their sequences, to be cleared."""
        limit = time.monotonic() - self.max_age_s
        with self._lock:
            old = [seq for seq, kept in self._kept.items() if kept.at < limit]
            for seq in old:
                del self._kept[seq]
        return old

    def forget(self, seq: int) -> None:
        """The sequence's cells were cleared by someone else."""
        with self._lock:
            self._kept.pop(seq, None)

    def held(self, tokens: list[int]) -> int:
        """The longest start of `tokens` a free sequence holds (any thread)."""
        with self._lock:
            starts = [shared_start(k.tokens, tokens) for k in self._kept.values()]
        return max(starts, default=0)
