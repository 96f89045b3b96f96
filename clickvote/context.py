"""Shared application state: settings, storage, crypto box, fan-out, rate limiters.

The real-time path reads environments and vote groups on every vote; those reads are served
from a small in-memory cache. Anything that changes an environment or a group calls
`changed()`, which empties the cache here and, through the fan-out, on every other instance;
entries also expire after CACHE_TTL seconds, which bounds staleness should a notice be lost.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from clickvote import identity
from clickvote.config import Settings
from clickvote.fanout import INVALIDATE_ROOM, Fanout, make_fanout
from clickvote.identity import Voter
from clickvote.ratelimit import RateLimiter, SharedBuckets
from clickvote.security import Box, CryptoError, load_master_key, random_key
from clickvote.storage import Env, Group, Storage, open_storage
from clickvote.storage.base import NewEnv
from clickvote.votes import VoteError

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
    _secrets: dict[str, str] = field(default_factory=dict)
    _cache: dict[tuple[str, ...], tuple[float, Any]] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Context:
        identity.configured(settings.identities)  # a bad setting fails at start, not later
        shared = SharedBuckets(settings.redis_url) if settings.redis_url else None
        return cls(
            settings=settings,
            storage=open_storage(settings),
            box=Box(load_master_key(settings.data_dir, settings.master_key)),
            fanout=make_fanout(settings.redis_url),
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
        await self.fanout.publish(INVALIDATE_ROOM, "invalidate", None)

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

    # --- voter identity (the rules: clickvote/identity.py) --------------------------------
    def resolve_voter(
        self,
        env: Env,
        user_id: object,
        signature: object = None,
        voter_token: object = None,
        required: bool = True,
    ) -> Voter | None:
        """The voter a request speaks for, checked against the environment's identities."""
        return identity.resolve(
            env.id,
            env.identities,
            self.box,
            lambda: self.secret_key(env),
            user_id,
            signature,
            voter_token,
            required,
        )

    async def env_from_token(self, token: object, session: dict[str, Any] | None = None) -> Env:
        """The environment of a login token. `session` (a socket's state) keeps the last token
        it decrypted, so a page's votes decrypt their token once, not once per vote."""
        if not isinstance(token, str) or not token or len(token) > 2048:
            raise VoteError("unauthorized", "a login token is required (emit login first)")
        seen = session.get("login_token") if session is not None else None
        if seen is not None and seen[0] == token:
            data: dict[str, Any] = seen[1]
            if data["expiration"] < time.time() * 1000:
                raise VoteError("token_expired", "invalid login token (expired)")
        else:
            try:
                data = self.box.read_login_token(token)
            except (CryptoError, ValueError) as exc:
                code = "token_expired" if str(exc) == "expired" else "bad_token"
                raise VoteError(code, f"invalid login token ({exc})") from exc
            if session is not None:
                session["login_token"] = (token, data)
        env = await self.get_env(str(data.get("id")))
        if env is None or env.public_key != data.get("key"):
            raise VoteError("bad_token", "the login token's key is no longer valid")
        return env

    async def env_from_key(self, key: object) -> Env:
        if not isinstance(key, str) or not key.startswith("pb_") or len(key) > 64:
            raise VoteError("unknown_key", "unknown public key")
        env = await self.get_env_by_public_key(key)
        if env is None:
            raise VoteError("unknown_key", "unknown public key")
        return env

    async def start(self) -> None:
        await self.storage.open()
        await self.storage.migrate()

    async def housekeeping(self) -> None:
        now = int(time.time() * 1000)
        await self.storage.purge(now, now - 7 * 24 * 3600 * 1000)

    async def close(self) -> None:
        await self.fanout.close()
        if self.voter_limiter.shared is not None:
            await self.voter_limiter.shared.close()
        await self.storage.close()
