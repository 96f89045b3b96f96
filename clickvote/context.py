"""Shared application state: settings, storage, crypto box, fan-out, rate limiters, caches.
(Which environment and voter a request speaks for: clickvote/voters.py.)

The real-time path reads environments and vote groups on every vote; those reads are served
from a small in-memory cache. Anything that changes an environment or a group calls
`changed()`, which empties the cache here and, through the fan-out (an INVALIDATE message, which
this context takes on every instance), on every other instance; entries also expire after
CACHE_TTL seconds, which bounds staleness should a notice be lost.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from clickvote import identity
from clickvote.abuse import IP_VOTERS_MAX, IpWindow, Refusals
from clickvote.config import Settings
from clickvote.fanout import INVALIDATE, Fanout, InProcessFanout, Message
from clickvote.hublink import HubBuckets, HubFanout, HubLink
from clickvote.proof import Ledger
from clickvote.ratelimit import Buckets, RateLimiter, SharedBuckets
from clickvote.security import Box, load_master_key, random_key
from clickvote.storage import Env, Group, Storage, open_storage
from clickvote.storage.base import AbuseSettings, NewEnv

DEFAULT_ENVS = ("dev", "production")
T = TypeVar("T")
CACHE_TTL = 2.0  # seconds an environment or group read stays cached
CACHE_MAX = 10_000


@dataclass
class Context:
    settings: Settings
    storage: Storage
    box: Box
    fanout: Fanout
    voter_limiter: RateLimiter
    ip_limiter: RateLimiter
    login_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(10, 0.1))
    # abuse layers (clickvote/abuse.py): in memory (the window: where none is shared)
    ip_window: IpWindow = field(default_factory=IpWindow)
    pow_ledger: Ledger = field(default_factory=Ledger)
    refusals: Refusals = field(default_factory=Refusals)
    _secrets: dict[str, str] = field(default_factory=dict)
    _cache: dict[tuple[str, ...], tuple[float, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fanout.subscribe(INVALIDATE, self._invalidated)

    @classmethod
    def build(cls, settings: Settings, hub: HubLink | None = None) -> Context:
        """`hub`: this process is one of the workers of `clickvote serve --workers N`."""
        identity.configured(settings.identities)  # a bad setting fails at start, not later
        if not 0 <= settings.ip_voters <= IP_VOTERS_MAX:
            raise ValueError(f"CLICKVOTE_IP_VOTERS: {settings.ip_voters} is not 0..{IP_VOTERS_MAX}")
        shared: Buckets | None = None
        if settings.redis_url:
            shared = SharedBuckets(settings.redis_url)
        elif hub is not None:
            shared = HubBuckets(hub)
        return cls(
            settings=settings,
            storage=open_storage(settings),
            box=Box(load_master_key(settings.data_dir, settings.master_key)),
            fanout=make_fanout(settings.redis_url, hub),
            voter_limiter=RateLimiter(
                settings.rate_voter_burst, settings.rate_voter_per_sec, shared=shared
            ),
            ip_limiter=RateLimiter(settings.rate_ip_burst, settings.rate_ip_per_sec, shared=shared),
            login_limiter=RateLimiter(
                settings.rate_login_burst, settings.rate_login_per_sec, shared=shared
            ),
        )

    # --- keys ----------------------------------------------------------------------------
    def new_env(self, name: str, position: int) -> NewEnv:
        return NewEnv(
            name=name,
            position=position,
            public_key=random_key("pb_"),
            secret_key_sealed=self.box.seal_secret(random_key("sk_")),
            identities=identity.configured(self.settings.identities),
            abuse=AbuseSettings(ip_voters=self.settings.ip_voters),
        )

    def default_envs(self) -> list[NewEnv]:
        return [self.new_env(name, i) for i, name in enumerate(DEFAULT_ENVS)]

    def secret_key(self, env: Env) -> str:
        cached = self._secrets.get(env.secret_key_sealed)
        if cached is None:
            cached = self.box.open_secret(env.secret_key_sealed)
            if len(self._secrets) > 10_000:
                self._secrets.clear()
            self._secrets[env.secret_key_sealed] = cached
        return cached

    async def rotate_keys(self, env: Env) -> Env:
        updated = await self.storage.set_env_keys(
            env.id, random_key("pb_"), self.box.seal_secret(random_key("sk_"))
        )
        await self.changed()
        return updated

    # --- cached reads for the real-time path ---------------------------------------------
    def _cached(self, key: tuple[str, ...]) -> Any:
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    def _remember(self, key: tuple[str, ...], value: Any) -> None:
        if value is None:  # misses are not cached: a group created a moment ago must work
            return
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + CACHE_TTL, value)

    def forget(self) -> None:
        """Empty the cache of environments and groups (this instance only)."""
        self._cache.clear()

    async def changed(self) -> None:
        """An environment or vote group changed: empty the caches of every instance."""
        self.forget()
        await self.fanout.notify(INVALIDATE)

    async def _invalidated(self, msg: Message, local_origin: bool) -> None:
        self.forget()  # an environment or group changed on some instance

    async def _read(
        self, key: tuple[str, ...], load: Callable[[], Awaitable[T | None]]
    ) -> T | None:
        value: T | None = self._cached(key)
        if value is None:
            value = await load()
            self._remember(key, value)
        return value

    async def get_env(self, env_id: str) -> Env | None:
        return await self._read(("env", env_id), lambda: self.storage.get_env(env_id))

    async def get_env_by_public_key(self, public_key: str) -> Env | None:
        load = lambda: self.storage.get_env_by_public_key(public_key)  # noqa: E731
        return await self._read(("key", public_key), load)

    async def get_group_by_name(self, env_id: str, name: str) -> Group | None:
        load = lambda: self.storage.get_group_by_name(env_id, name)  # noqa: E731
        return await self._read(("group", env_id, name), load)

    async def start(self) -> None:
        await self.storage.open()
        await self.storage.migrate()

    async def housekeeping(self) -> None:
        now = int(time.time() * 1000)
        await self.storage.purge(now, now - 7 * 24 * 3600 * 1000)

    async def stopping(self) -> None:
        """The server stops (its requests are answered or cut): storage calls get a grace."""
        await self.storage.stopping()

    async def close(self) -> None:
        await self.refusals.flush(self.storage)
        await self.fanout.close()
        if self.voter_limiter.shared is not None:
            await self.voter_limiter.shared.close()
        await self.storage.close()


def make_fanout(redis_url: str, hub: HubLink | None = None) -> Fanout:
    """Redis where configured; else the hub between the workers of one machine, if any."""
    if not redis_url:
        return InProcessFanout() if hub is None else HubFanout(hub)
    try:  # imported only where configured: a small device without Redis never loads redis-py
        from clickvote.fanout_redis import RedisFanout
    except ImportError as exc:  # pragma: no cover - redis-py missing
        raise ValueError(f"Redis fan-out needs redis-py ({exc})") from exc
    return RedisFanout(redis_url)
