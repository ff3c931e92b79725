"""Per-key token buckets (one limiter per Serve replica; see docs/operations.md): HTTP ingest per device,
failed device authentications per client, login attempts per client and user."""
from __future__ import annotations

import time
from collections import OrderedDict


class RateLimiter:
    """`rate` tokens per second up to `burst`; the least recently used keys are forgotten past `max_keys`."""

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str, cost: float = 1.0, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens = self._tokens(self._buckets.pop(key, None), now)
        allowed = tokens >= cost
        self._buckets[key] = (tokens - cost if allowed else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self, key: str, cost: float = 1.0, now: float | None = None) -> float:
        """Seconds until `cost` tokens are there (0 = now), spending nothing: for callers that spend
        only on failure (a wrong password) but must refuse before the costly check once spent."""
        now = time.monotonic() if now is None else now
        missing = cost - self._tokens(self._buckets.get(key), now)
        return 0.0 if missing <= 0 else missing / self.rate

    def _tokens(self, bucket: tuple[float, float] | None, now: float) -> float:
        if bucket is None:
            return self.burst
        tokens, last = bucket
        return min(self.burst, tokens + (now - last) * self.rate)
