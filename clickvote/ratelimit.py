"""Token buckets keyed by voter or IP, bounded in memory."""

from __future__ import annotations

import math
import time
from collections import OrderedDict


class RateLimiter:
    def __init__(self, burst: float, per_second: float, max_keys: int = 100_000) -> None:
        self.burst = float(burst)
        self.rate = float(per_second)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, cost: float = 1.0, now: float | None = None) -> float:
        """Take tokens; return 0.0 if allowed, else the seconds to wait before retrying."""
        if self.rate <= 0 and self.burst <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (cost - tokens) / self.rate if self.rate > 0 else 60.0
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


def retry_after(wait: float) -> float:
    """A wait as answered (seconds): whole milliseconds rounded up, never under 1 ms."""
    return max(1, math.ceil(wait * 1000)) / 1000


def retry_after_header(wait: float) -> str:
    """A wait as the HTTP Retry-After header (whole seconds): rounded up, at least 1."""
    return str(max(1, math.ceil(wait)))
