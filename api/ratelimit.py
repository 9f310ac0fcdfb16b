"""Token buckets for messages per user per second (this process's share)."""

from __future__ import annotations

import time
from collections.abc import Hashable

# Past this many buckets, full ones are dropped (a full bucket is the same as none): memory
# stays bounded by the users active within one refill period.
PRUNE_ABOVE = 100_000


class TokenBuckets:
    __slots__ = ("_buckets", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self._buckets: dict[Hashable, tuple[float, float]] = {}

    def take(self, key: Hashable, now: float | None = None) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate if self.rate > 0 else 60.0
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > PRUNE_ABOVE:
            self._prune(now)
        return 0.0

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate if self.rate > 0 else 0
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
