"""Abuse control of votes, in layers, each a per-environment setting (dashboard Settings):

1. token: the voter identities the environment accepts (clickvote/identity.py);
2. ipWindow: within `ip_window` seconds, one (client IP, user agent) pair may vote as at most
   `ip_voters` distinct voters on one item (`IpWindow`; per instance, in memory, bounded);
3. rateLimit: the token buckets (clickvote/ratelimit.py), per voter as the server sets them
   or stricter (`rate_burst`, `rate_per_sec`);
4. proofOfWork: a solved challenge before a first vote (clickvote/proof.py).

`Refusals` counts the votes each layer refused, per environment and day, in memory; the
counts reach storage in batches (`flush`, every FLUSH_EVERY seconds), so a vote never waits
for them and a storage failure never fails one.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

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
        except Exception as exc:
            log.warning("refusal counts not stored yet (%s)", exc)
            for key, n in batch.items():
                if key in self._counts or len(self._counts) < self.max_keys:
                    self._counts[key] = self._counts.get(key, 0) + n
