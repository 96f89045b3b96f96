"""Abuse control of votes, in layers, each a per-environment setting (dashboard Settings):

1. token: the voter identities the environment accepts (clickvote/identity.py);
2. ipWindow: within `ip_window` seconds, one (client IP, user agent) pair may vote as at most
   `ip_voters` distinct voters on one item (`admit_voter`: in Redis where configured, else
   in the hub of `clickvote serve --workers N`, so across instances and workers; `IpWindow`,
   in memory and bounded, for one process alone and whenever those don't answer);
3. rateLimit: the token buckets (clickvote/ratelimit.py), per voter as the server sets them
   or stricter (`rate_burst`, `rate_per_sec`);
4. proofOfWork: a solved challenge before a first vote (clickvote/proof.py).

`Refusals` counts the votes each layer refused, per environment and day, in memory; the
counts reach storage in batches (`flush`, every FLUSH_EVERY seconds), so a vote never waits
for them and a storage failure never fails one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from clickvote.ratelimit import WINDOW_REFUSED
from clickvote.storage.base import Outage, StorageUnavailable

if TYPE_CHECKING:
    from clickvote.ratelimit import Buckets, RateLimiter

log = logging.getLogger("clickvote.abuse")
LAYERS = ("token", "ipWindow", "rateLimit", "proofOfWork")
IP_VOTERS_MAX = 1000  # the most voters per (IP, user agent) an environment may allow
WINDOW_MAX_ENTRIES = 200_000  # voters remembered by IpWindow, over all its keys
REFUSALS_MAX_KEYS = 100_000  # (environment, day, layer) counts waiting for storage
FLUSH_EVERY = 5.0  # seconds
DAY_MS = 24 * 3600 * 1000


class IpWindow:
    """The voters each (environment, group, item, IP, user agent) voted as lately."""

    def __init__(self, max_entries: int = WINDOW_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, ...], dict[str, float]] = OrderedDict()
        self._entries = 0

    def admit(
        self, key: tuple[str, ...], voter: str, window: float, limit: int, now: float | None = None
    ) -> bool:
        """Whether `voter` may vote from `key` (remembered if so); `limit` 0: always."""
        if limit <= 0:
            return True
        now = time.monotonic() if now is None else now
        voters = self._seen.pop(key, None) or {}
        self._entries -= len(voters)
        while voters:  # first seen, oldest first (insertion order): drop the expired
            oldest = next(iter(voters))
            if voters[oldest] > now - window:
                break
            del voters[oldest]
        admitted = voter in voters or len(voters) < limit
        if admitted and voter not in voters:
            voters[voter] = now
        self._seen[key] = voters
        self._entries += len(voters)
        while self._entries > self.max_entries and len(self._seen) > 1:
            _, dropped = self._seen.popitem(last=False)  # the least recently used key
            self._entries -= len(dropped)
        return admitted


async def admit_voter(
    local: IpWindow,
    shared: Buckets | None,
    key: tuple[str, ...],
    voter: str,
    window: float,
    limit: int,
) -> bool:
    """Whether `voter` may vote from `key` (environment, group, item, IP, user agent): by the
    `shared` window where it answers, else by this process' own."""
    if limit <= 0:
        return True
    if shared is not None:
        answer = await shared.admit_voter(window_key(key), voter, window, limit)
        if answer is not None:
            return answer
    return local.admit(key, voter, window, limit)


async def admit_and_take(
    local: IpWindow,
    limiter: RateLimiter,
    window: tuple[tuple[str, ...], str, float, int],
    bucket: tuple[str, float, float],
) -> tuple[bool, float]:
    """A vote's layers 2 and 3: whether the window (`admit_voter`'s key, voter, window,
    limit) admits the voter, and if so the wait its bucket (key, burst, rate) answers (0.0:
    a token taken). One question to the shared backend where both apply there; where it
    does not answer, this process' own window and buckets."""
    (key, voter, seconds, limit), (name, burst, rate) = window, bucket
    shared = limiter.shared
    if limit <= 0 or shared is None or (rate <= 0 and burst <= 0):
        if not await admit_voter(local, shared, key, voter, seconds, limit):
            return False, 0.0
        return True, await limiter.acquire(name, 1.0, burst, rate)
    wait = await shared.admit_and_take(
        (window_key(key), voter, seconds, limit), (name, burst, rate, 1.0)
    )
    if wait is not None:
        return wait != WINDOW_REFUSED, max(wait, 0.0)
    if not local.admit(key, voter, seconds, limit):
        return False, 0.0
    return True, limiter.take(name, 1.0, burst=burst, rate=rate)


def window_key(key: tuple[str, ...]) -> str:
    """A window's key as the shared backends keep it: a digest, short whatever the user agent."""
    text = json.dumps(key).encode()  # ASCII: any string, lone surrogates too
    return hashlib.blake2b(text, digest_size=16).hexdigest()


def tightened(own: float, server: float) -> float:
    """An environment's rate limit value: its own (0: none) where it is the stricter one."""
    return min(own, server) if own > 0 and server > 0 else own or server


def day_of(ms: float) -> int:
    """The ms since the epoch of the UTC day holding `ms`."""
    return int(ms // DAY_MS * DAY_MS)


class Refusals:
    """Votes refused per (environment, day, layer), waiting to be added to storage."""

    def __init__(self, max_keys: int = REFUSALS_MAX_KEYS) -> None:
        self.max_keys = max_keys
        self._counts: dict[tuple[str, int, str], int] = {}
        self._warned = False
        self._outage = Outage(log, "storing refusal counts")

    def count(self, env_id: str, layer: str, now_ms: float | None = None) -> None:
        day = day_of(time.time() * 1000 if now_ms is None else now_ms)
        key = (env_id, day, layer)
        if key in self._counts or len(self._counts) < self.max_keys:
            self._counts[key] = self._counts.get(key, 0) + 1
        elif not self._warned:
            self._warned = True
            log.warning("refusal counts dropped: %d waiting for storage", len(self._counts))

    async def flush(self, storage: Any) -> None:
        """Add the waiting counts to storage in one batch; kept for the next try on failure."""
        batch, self._counts = self._counts, {}
        if not batch:
            return
        try:
            await storage.add_refusals([(e, d, layer, n) for (e, d, layer), n in batch.items()])
            self._warned = False
            self._outage.ended()
        except Exception as exc:
            if isinstance(exc, StorageUnavailable):  # restarting or hung: kept for the next try
                self._outage.began(exc)
            else:
                log.warning("refusal counts not stored yet (%s)", exc)
            for key, n in batch.items():
                if key in self._counts or len(self._counts) < self.max_keys:
                    self._counts[key] = self._counts.get(key, 0) + n
