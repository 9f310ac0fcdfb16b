"""Reconnect delays: capped exponential backoff with full jitter, so a thousand clients cut
off by one deploy do not come back in the same second."""

from __future__ import annotations

import random


def full_jitter(attempt: int, base: float = 0.5, cap: float = 15.0) -> float:
    """A delay in [0, min(cap, base * 2**attempt)) for the `attempt`-th retry (0-based)."""
    return random.uniform(0, min(cap, base * 2 ** min(attempt, 30)))
