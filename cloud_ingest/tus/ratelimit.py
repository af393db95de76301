"""Per-vehicle request rate limit: a token bucket per vehicle id (pure; the clock is passed in)."""

from __future__ import annotations

from dataclasses import dataclass

from cloud_ingest.errors import RateLimited


@dataclass(slots=True)
class _Bucket:
    tokens: float
    t_s: float


class RateLimiter:
    """``rate_per_s`` requests per second sustained, bursts up to ``burst``, per key."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now_s: float) -> None:
        """Spend one token of ``key``'s bucket, or raise :class:`RateLimited` with the wait time."""
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()  # bounded memory; forgetting buckets only ever lets requests in
            b = self._buckets[key] = _Bucket(self.burst, now_s)
        b.tokens = min(self.burst, b.tokens + (now_s - b.t_s) * self.rate_per_s)
        b.t_s = now_s
        if b.tokens < 1.0:
            wait = (1.0 - b.tokens) / self.rate_per_s
            raise RateLimited(f"vehicle {key!r} exceeds {self.rate_per_s:g} requests/s; retry in {wait:.2f} s",
                              retry_after_s=wait)
        b.tokens -= 1.0
