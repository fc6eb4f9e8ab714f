"""Per-client rate limits for the scenario servers: a token bucket per key (a user, a room, an address).

A bucket holds up to `burst` tokens and refills at `per_second`; each request takes one, and a request that
finds the bucket empty is refused (the server answers 429 with ``Retry-After``, or drops a bullet comment).
Bursts are normal (a client joining sends several requests at once), floods are not. Keys are kept for idle
clients only as long as their bucket is not full, so a flood of new keys cannot grow memory without bound.

    limiter = RateLimiter(burst=20, per_second=10)
    if not limiter.allow(f"user:{room}/{user}"):
        return json_error(429, "too many requests: slow down")
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """A token bucket per key: `burst` requests at once, then `per_second` on average.

    Args:
        burst: requests a key may make at once (the bucket's size), at least 1.
        per_second: the sustained rate once the burst is spent, above 0.
        max_keys: how many partly used buckets to remember before forgetting the full ones.
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(
        self,
        burst: int,
        per_second: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if not per_second > 0:
            raise ValueError("per_second must be above 0")
        self.burst, self.per_second, self.max_keys, self._clock = burst, per_second, max_keys, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens left, when counted)

    def allow(self, key: str) -> bool:
        """Take one token from `key`'s bucket; False (refuse the request) when there is none."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.per_second)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._forget_full(now)
        return allowed

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: forgetting them changes nothing for their keys."""
        self._buckets = {
            key: (tokens, last)
            for key, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.per_second < self.burst
        }

    def __len__(self) -> int:
        """How many keys are remembered."""
        return len(self._buckets)
