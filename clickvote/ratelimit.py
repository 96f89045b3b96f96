"""Token buckets keyed by voter, IP or email: in memory, or shared through Redis.

With Redis configured, every instance takes from the same buckets (an atomic script on the
Redis server, timed by its clock), so a voter's limit holds across instances. A Redis that
fails or answers slower than SHARED_TIMEOUT is bypassed: each instance limits on its own
buckets, and a background check every SHARED_RETRY seconds returns to the shared ones once
Redis answers. Only the requests in flight when it failed waited (at most SHARED_TIMEOUT).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from typing import Any, Protocol

log = logging.getLogger("clickvote.ratelimit")
SHARED_TIMEOUT = 0.25  # seconds a request may wait for Redis' answer
SHARED_RETRY = 5.0  # seconds on local buckets after Redis failed

# KEYS[1]: bucket; ARGV: burst, refill per second, cost. Returns the wait in seconds (text).
TAKE_SCRIPT = """
local burst, rate, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local saved = redis.call('HMGET', KEYS[1], 'n', 't')
local tokens = tonumber(saved[1]) or burst
local last = tonumber(saved[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
elseif rate > 0 then
  wait = (cost - tokens) / rate
else
  wait = 60
end
redis.call('HSET', KEYS[1], 'n', tostring(tokens), 't', tostring(now))
local full = 3600
if rate > 0 then full = (burst - tokens) / rate end
redis.call('PEXPIRE', KEYS[1], math.ceil((full + 1) * 1000))
return tostring(wait)
"""


class Buckets(Protocol):
    """Buckets shared by every process that limits: through Redis (SharedBuckets) or the hub
    of `clickvote serve --workers N` (clickvote/hublink.py)."""

    async def take(self, key: str, burst: float, rate: float, cost: float) -> float | None: ...
    async def first_use(self, key: str, ttl: float) -> bool | None: ...
    async def close(self) -> None: ...


class SharedBuckets:
    """Buckets in Redis for every RateLimiter of this instance (one connection pool)."""

    def __init__(self, url: str, prefix: str = "clickvote:rl:") -> None:
        import redis.asyncio as aioredis

        self.prefix = prefix
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=SHARED_TIMEOUT, socket_connect_timeout=SHARED_TIMEOUT
        )
        self._script: Any = self._redis.register_script(TAKE_SCRIPT)
        self._down_until = 0.0  # 0.0: Redis answers; else local buckets until then
        self._probe: asyncio.Task[None] | None = None

    async def take(self, key: str, burst: float, rate: float, cost: float) -> float | None:
        """The wait (0.0: allowed), or None when Redis can't answer now (use local buckets)."""
        if self._down_until:
            if time.monotonic() >= self._down_until and self._probe is None:
                self._probe = asyncio.create_task(self._check())
            return None
        try:
            async with asyncio.timeout(SHARED_TIMEOUT):
                name = (self.prefix + key).encode("utf-8", "surrogatepass")  # any string
                raw = await self._script(keys=[name], args=[burst, rate, cost])
        except Exception as exc:  # any Redis trouble: limit locally until it answers again
            if not self._down_until:
                log.warning("rate limits per instance for now: Redis failed (%s)", exc)
            self._down_until = time.monotonic() + SHARED_RETRY
            return None
        return float(raw)

    async def first_use(self, key: str, ttl: float) -> bool | None:
        """Whether `key` is marked used here for the first time, for `ttl` seconds (a proof
        of work's challenge); None when Redis can't answer now (remember it locally)."""
        if self._down_until:
            return None
        try:
            async with asyncio.timeout(SHARED_TIMEOUT):
                name = (self.prefix + "used:" + key).encode("utf-8", "surrogatepass")
                first = await self._redis.set(name, b"1", nx=True, px=max(1, int(ttl * 1000)))
        except Exception as exc:
            if not self._down_until:
                log.warning("rate limits per instance for now: Redis failed (%s)", exc)
            self._down_until = time.monotonic() + SHARED_RETRY
            return None
        return bool(first)

    async def _check(self) -> None:
        """In the background, not in a request: whether Redis answers again."""
        try:
            async with asyncio.timeout(SHARED_TIMEOUT):
                await self._redis.ping()
            self._down_until = 0.0
            log.info("rate limits shared through Redis again")
        except Exception:
            self._down_until = time.monotonic() + SHARED_RETRY
        finally:
            self._probe = None

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        await self._redis.aclose()


class RateLimiter:
    def __init__(
        self,
        burst: float,
        per_second: float,
        max_keys: int = 100_000,
        shared: Buckets | None = None,
    ) -> None:
        self.burst = float(burst)
        self.rate = float(per_second)
        self.max_keys = max_keys
        self.shared = shared
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def acquire(
        self,
        key: str,
        cost: float = 1.0,
        burst: float | None = None,
        rate: float | None = None,
    ) -> float:
        """Take tokens from the shared bucket if there is one, else from this instance's;
        `burst` and `rate` (both or neither) in place of the limiter's own for this bucket."""
        if burst is None or rate is None:
            burst, rate, own = self.burst, self.rate, True
        else:
            own = False
        if self.shared is not None and not (rate <= 0 and burst <= 0):
            wait = await self.shared.take(key, burst, rate, cost)
            if wait is not None:
                return wait
        return self.take(key, cost) if own else self.take(key, cost, burst=burst, rate=rate)

    def take(
        self,
        key: str,
        cost: float = 1.0,
        now: float | None = None,
        burst: float | None = None,
        rate: float | None = None,
    ) -> float:
        """Take tokens; return 0.0 if allowed, else the seconds to wait before retrying."""
        burst = self.burst if burst is None else burst
        rate = self.rate if rate is None else rate
        if rate <= 0 and burst <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (cost - tokens) / rate if rate > 0 else 60.0
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


def retry_after(wait: float) -> float:
    """A wait as answered (seconds): whole milliseconds rounded up, never under 1 ms."""
    return max(1, math.ceil(wait * 1000)) / 1000


def retry_after_header(wait: float) -> str:
    """A wait as the HTTP Retry-After header (whole seconds): rounded up, at least 1."""
    return str(max(1, math.ceil(wait)))
