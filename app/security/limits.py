"""Rate limiting: a token bucket per caller."""

from __future__ import annotations

import math
import time


class RateLimiter:
    """`per_minute` requests per caller, refilled continuously, bursting up to the same.

    Kept in process memory: with several replicas each enforces its own share.
    """

    def __init__(self, per_minute: int, *, max_callers: int = 10_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_callers = max_callers
        self._buckets: dict[str, tuple[float, float]] = {}

    def hit(self, caller: str) -> int:
        """Take a token; 0 if allowed, else the seconds until one is available."""
        if self.capacity <= 0:
            return 0
        now = time.monotonic()
        tokens = self._tokens(caller, now)
        if tokens < 1:
            self._buckets[caller] = (tokens, now)
            return self._wait(tokens)
        if len(self._buckets) >= self.max_callers and caller not in self._buckets:
            self._buckets.clear()  # bounded memory; forgetting only loosens the limit
        self._buckets[caller] = (tokens - 1, now)
        return 0

    def retry_after(self, caller: str) -> int:
        """Seconds until `caller` has a token again (0: it has one); takes nothing."""
        if self.capacity <= 0 or caller not in self._buckets:
            return 0
        tokens = self._tokens(caller, time.monotonic())
        return 0 if tokens >= 1 else self._wait(tokens)

    def _tokens(self, caller: str, now: float) -> float:
        tokens, last = self._buckets.get(caller, (self.capacity, now))
        return min(self.capacity, tokens + (now - last) * self.rate)

    def _wait(self, tokens: float) -> int:
        return max(1, math.ceil((1 - tokens) / self.rate))
