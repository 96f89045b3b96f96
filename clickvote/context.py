"""Shared application state: settings, storage, crypto box, fan-out, rate limiters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from clickvote.config import Settings
from clickvote.fanout import Fanout, make_fanout
from clickvote.ratelimit import RateLimiter
from clickvote.security import Box, CryptoError, check_user_signature, load_master_key, random_key
from clickvote.storage import Env, Storage, open_storage
from clickvote.storage.base import NewEnv
from clickvote.votes import MAX_USER_ID, VoteError

DEFAULT_ENVS = ("dev", "production")


@dataclass
class Context:
    settings: Settings
    storage: Storage
    box: Box
    fanout: Fanout
    voter_limiter: RateLimiter
    ip_limiter: RateLimiter
    _secrets: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Context:
        return cls(
            settings=settings,
            storage=open_storage(settings),
            box=Box(load_master_key(settings.data_dir, settings.master_key)),
            fanout=make_fanout(settings.redis_url),
            voter_limiter=RateLimiter(settings.rate_voter_burst, settings.rate_voter_per_sec),
            ip_limiter=RateLimiter(settings.rate_ip_burst, settings.rate_ip_per_sec),
        )

    # --- keys ----------------------------------------------------------------------------
    def new_env(self, name: str, position: int) -> NewEnv:
        return NewEnv(
            name=name,
            position=position,
            public_key=random_key("pb_"),
            secret_key_sealed=self.box.seal_secret(random_key("sk_")),
            require_signed=self.settings.require_signed,
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
        return await self.storage.set_env_keys(
            env.id, random_key("pb_"), self.box.seal_secret(random_key("sk_"))
        )

    # --- voter identity ------------------------------------------------------------------
    def resolve_voter(
        self,
        env: Env,
        user_id: object,
        signature: object = None,
        voter_token: object = None,
        required: bool = True,
    ) -> str | None:
        """The voter id to record, after checking signed ids / voter tokens as configured."""
        if voter_token is not None:
            if not isinstance(voter_token, str) or len(voter_token) > 512:
                raise VoteError("bad_voter_token", "voterToken must be a string")
            try:
                voter = self.box.read_voter_token(env.id, voter_token)
            except CryptoError as exc:
                raise VoteError("bad_voter_token", f"invalid voter token ({exc})") from exc
            if user_id not in (None, "", voter):
                raise VoteError("bad_voter_token", "userId does not match the voter token")
            return voter
        if user_id is None or user_id == "":
            if required:
                raise VoteError("bad_user", "userId is required")
            return None
        if isinstance(user_id, bool) or not isinstance(user_id, str | int):
            raise VoteError("bad_user", "userId must be a string")
        uid = str(user_id)
        if len(uid) > MAX_USER_ID:
            raise VoteError("bad_user", f"userId is longer than {MAX_USER_ID} characters")
        if signature is not None:
            if not isinstance(signature, str) or not check_user_signature(
                self.secret_key(env), uid, signature
            ):
                raise VoteError("bad_signature", "the userId signature is invalid")
            return uid
        if env.require_signed:
            raise VoteError(
                "signature_required",
                "this environment requires a signed userId (signature) or a voterToken",
            )
        return uid

    async def env_from_token(self, token: object) -> Env:
        if not isinstance(token, str) or not token or len(token) > 2048:
            raise VoteError("unauthorized", "a login token is required (emit login first)")
        try:
            data = self.box.read_login_token(token)
        except (CryptoError, ValueError) as exc:
            code = "token_expired" if str(exc) == "expired" else "bad_token"
            raise VoteError(code, f"invalid login token ({exc})") from exc
        env = await self.storage.get_env(str(data.get("id")))
        if env is None or env.public_key != data.get("key"):
            raise VoteError("bad_token", "the login token's key is no longer valid")
        return env

    async def env_from_key(self, key: object) -> Env:
        if not isinstance(key, str) or not key.startswith("pb_") or len(key) > 64:
            raise VoteError("unknown_key", "unknown public key")
        env = await self.storage.get_env_by_public_key(key)
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
        await self.storage.close()
