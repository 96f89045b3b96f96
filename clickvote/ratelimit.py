"""Token buckets keyed by voter, IP or email: in memory, or shared through Redis.

With Redis configured, every instance takes from the same buckets (an atomic script on the
Redis server, timed by its clock), so a voter's limit holds across instances; so do the used
proof-of-work challenges and the voters of the IP + user-agent window (clickvote/abuse.py,
`admit_voter`). A Redis that
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
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

log = logging.getLogger("clickvote.ratelimit")
SHARED_TIMEOUT = 0.25  # seconds a request may wait for Redis' answer
SHARED_RETRY = 5.0  # seconds on local buckets after Redis failed
T = TypeVar("T")

# take(key, burst, refill per second, cost): the wait in seconds (text), 0 if taken.
TAKE_FN = """
local function take(key, burst, rate, cost)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local saved = redis.call('HMGET', key, 'n', 't')
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
  redis.call('HSET', key, 'n', tostring(tokens), 't', tostring(now))
  local full = 3600
  if rate > 0 then full = (burst - tokens) / rate end
  redis.call('PEXPIRE', key, math.ceil((full + 1) * 1000))
  return tostring(wait)
end
"""

# admit(key, voter, window (ms), limit): a window is a sorted set of voters scored by when first
# seen (ms, Redis' clock); 1 (admitted: known, or remembered now) or 0.
ADMIT_FN = """
local function admit(key, voter, window, limit)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZSCORE', key, voter) then
    return 1
  end
  if redis.call('ZCARD', key) >= limit then
    return 0
  end
  redis.call('ZADD', key, now, voter)
  redis.call('PEXPIRE', key, window)
  return 1
end
"""

# KEYS[1]: bucket; ARGV: burst, rate, cost. The wait (text).
TAKE_SCRIPT = (
    TAKE_FN + "return take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))"
)
# KEYS[1]: window; ARGV: voter, window (ms), limit. 1 or 0.
WINDOW_SCRIPT = ADMIT_FN + "return admit(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))"
# A vote's window, then its voter's bucket, at once: KEYS[1] window, KEYS[2] bucket; ARGV:
# voter, window (ms), limit, burst, rate, cost. REFUSED where the window refuses (no token
# taken), else take's wait.
REFUSED = "-"
VOTE_SCRIPT = (
    ADMIT_FN
    + TAKE_FN
    + "if admit(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])) == 0 then\n"
    + f"  return '{REFUSED}'\n"
    + "end\n"
    + "return take(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))"
)


class Buckets(Protocol):
    """Buckets shared by every process that limits: through Redis (SharedBuckets) or the hub
    of `clickvote serve --workers N` (clickvote/hublink.py)."""

    async def take(self, key: str, burst: float, rate: float, cost: float) -> float | None: ...
    async def first_use(self, key: str, ttl: float) -> bool | None: ...
    async def admit_voter(self, key: str, voter: str, window: float, limit: int) -> bool | None: ...
    async def admit_and_take(self, window: Window, bucket: Bucket) -> float | None: ...
    async def close(self) -> None: ...


# What a vote asks of the window and the voter's bucket at once (Buckets.admit_and_take), and
# its answer where the window refuses the voter (no token taken); else the bucket's wait.
Window = tuple[str, str, float, int]  # key, voter, window (s), limit: as admit_voter's
Bucket = tuple[str, float, float, float]  # key, burst, rate, cost: as take's
WINDOW_REFUSED = -1.0


class SharedBuckets:
    """Buckets in Redis for every RateLimiter of this instance (one connection pool)."""

    def __init__(self, url: str, prefix: str = "clickvote:rl:") -> None:
        import redis.asyncio as aioredis

        self.prefix = prefix
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=SHARED_TIMEOUT, socket_connect_timeout=SHARED_TIMEOUT
        )
        self._script: Any = self._redis.register_script(TAKE_SCRIPT)
        self._window: Any = self._redis.register_script(WINDOW_SCRIPT)
        self._vote: Any = self._redis.register_script(VOTE_SCRIPT)
        self._down_until = 0.0  # 0.0: Redis answers; else local buckets until then
        self._probe: asyncio.Task[None] | None = None

    async def take(self, key: str, burst: float, rate: float, cost: float) -> float | None:
        """The wait (0.0: allowed), or None when Redis can't answer now (use local buckets)."""
        name = self._name(key)
        raw = await self._ask(lambda: self._script(keys=[name], args=[burst, rate, cost]))
        return None if raw is None else float(raw)

    async def first_use(self, key: str, ttl: float) -> bool | None:
        """Whether `key` is marked used here for the first time, for `ttl` seconds (a proof
        of work's challenge); None when Redis can't answer now (remember it locally)."""
        name, ms = self._name("used:" + key), max(1, int(ttl * 1000))

        async def mark() -> bool:  # SET NX answers None where the key was there already
            return bool(await self._redis.set(name, b"1", nx=True, px=ms))

        return await self._ask(mark)

    async def admit_voter(self, key: str, voter: str, window: float, limit: int) -> bool | None:
        """Whether `voter` may vote from `key` (remembered for `window` seconds if so): at
        most `limit` voters per window, a voter already in it always; None when Redis can't
        answer now (count locally)."""
        name, who = self._name("win:" + key), voter.encode("utf-8", "surrogatepass")
        ms = max(1, int(window * 1000))
        answer = await self._ask(lambda: self._window(keys=[name], args=[who, ms, limit]))
        return None if answer is None else bool(answer)

    async def admit_and_take(self, window: Window, bucket: Bucket) -> float | None:
        """A vote's window, then its voter's bucket, in one script: WINDOW_REFUSED where the
        window refuses the voter (no token taken), else take's wait; None as for the others."""
        (key, voter, seconds, limit), (name, burst, rate, cost) = window, bucket
        keys = [self._name("win:" + key), self._name(name)]
        args = [voter.encode("utf-8", "surrogatepass"), max(1, int(seconds * 1000)), limit]
        raw = await self._ask(lambda: self._vote(keys=keys, args=[*args, burst, rate, cost]))
        if raw is None:
            return None
        return WINDOW_REFUSED if raw == REFUSED.encode() else float(raw)

    def _name(self, key: str) -> bytes:
        return (self.prefix + key).encode("utf-8", "surrogatepass")  # any string

    async def _ask(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """Redis' answer, or None while it is down or when it fails or is slow now (then
        every caller uses local state until a background check finds it answering again)."""
        if self._down_until:
            if time.monotonic() >= self._down_until and self._probe is None:
                self._probe = asyncio.create_task(self._check())
            return None
        try:
            async with asyncio.timeout(SHARED_TIMEOUT):
                return await call()
        except Exception as exc:  # any Redis trouble: limit locally until it answers again
            if not self._down_until:
                log.warning("rate limits per instance for now: Redis failed (%s)", exc)
            self._down_until = time.monotonic() + SHARED_RETRY
            return None

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
