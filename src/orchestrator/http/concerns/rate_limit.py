"""Per-client rate limiting with aiolimiter: answer 429 at once, never queue."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from aiolimiter import AsyncLimiter
from cachetools import TTLCache

from orchestrator.http.api_error import ApiError

__all__ = ["RateLimiter", "fill_level"]


def fill_level(bucket: AsyncLimiter) -> float:
    """How full ``bucket`` is, as of its last ``has_capacity()`` or ``acquire()``.

    aiolimiter exposes no public fill level: this is the one read of its private ``_level``
    (``tests/http/test_aiohttp_internals.py`` fails with a clear message if it goes away).
    """
    return float(bucket._level)


class RateLimiter:
    """One leaky bucket (``AsyncLimiter``) per client key, in a bounded TTL/LRU map.

    A bucket holds ``burst`` requests and drains at ``rate`` per second. ``admit`` answers
    at once: the request is admitted (and its headers returned) or an ``ApiError`` 429 is
    raised with ``Retry-After``. Each use re-inserts the bucket, so a busy client's entry
    never idles out; an idle one has drained completely before its TTL expires, so expiry
    loses nothing. At most ``max_clients`` buckets exist; the least recently used goes.

    Args:
        rate: requests per second per client.
        burst: bucket size (requests admitted at once).
        max_clients: most buckets kept.
        timer: clock of the TTL map (inject in tests).
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        max_clients: int,
        *,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._period = burst / rate
        self._buckets: TTLCache[str, AsyncLimiter] = TTLCache(
            maxsize=max_clients, ttl=max(self._period, 1.0), timer=timer
        )
        self._retry_after = str(max(1, math.ceil(1 / rate)))
        self._limit = str(burst)
        self.rejected_total = 0

    @property
    def clients(self) -> int:
        """Buckets held now (expired ones may linger until the map is touched)."""
        return len(self._buckets)

    async def admit(self, key: str) -> dict[str, str]:
        """Take one request from ``key``'s bucket; return the ``RateLimit-*`` headers.

        Raises:
            ApiError: 429 with ``Retry-After`` when the bucket is full.
        """
        buckets = self._buckets
        try:
            bucket = buckets[key]
        except KeyError:
            bucket = AsyncLimiter(self.burst, self._period)
        buckets[key] = bucket  # re-set on every use: TTL counts from the last set
        if not bucket.has_capacity():
            self.rejected_total += 1
            headers = self._headers(bucket)
            headers["Retry-After"] = self._retry_after
            raise ApiError(429, "too_many_requests",
                           f"rate limit of {self.rate:g} requests/s exceeded", headers)  # fmt: skip
        await bucket.acquire()  # never waits: capacity was just checked with no await between
        return self._headers(bucket)

    def _headers(self, bucket: AsyncLimiter) -> dict[str, str]:
        level = fill_level(bucket)
        remaining = max(0, math.floor(self.burst - level))
        reset = math.ceil(level / self.rate) if level > 0 else 0
        return {
            "RateLimit-Limit": self._limit,
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
        }
