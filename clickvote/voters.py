"""Who a request speaks for: the environment that its public key or login token names, and the
voter (one of the kinds in clickvote/identity.py) that it acts as.

Refusals are `AccessError`s (an environment's key or token) and `identity.IdentityError`s (a
voter), both VoteErrors: a `clickvote:error` on a socket, a 4xx JSON answer over HTTP.
"""

from __future__ import annotations

import time
from typing import Any

from clickvote import identity
from clickvote.context import Context
from clickvote.fields import MAX_KEY, MAX_LOGIN_TOKEN
from clickvote.identity import Voter
from clickvote.security import CryptoError
from clickvote.storage import Env
from clickvote.votes import VoteError


class AccessError(VoteError):
    """A public key or login token the server refuses (codes: unauthorized, unknown_key,
    bad_token, token_expired)."""


async def env_from_key(ctx: Context, key: object) -> Env:
    """The environment of a public key."""
    if not isinstance(key, str) or not key.startswith("pb_") or len(key) > MAX_KEY:
        raise AccessError("unknown_key", "unknown public key")
    env = await ctx.get_env_by_public_key(key)
    if env is None:
        raise AccessError("unknown_key", "unknown public key")
    return env


async def env_from_token(ctx: Context, token: object, session: dict[str, Any] | None = None) -> Env:
    """The environment of a login token. `session` (a socket's state) keeps the last token
    it decrypted, so a page's votes decrypt their token once, not once per vote."""
    if not isinstance(token, str) or not token or len(token) > MAX_LOGIN_TOKEN:
        raise AccessError("unauthorized", "a login token is required (emit login first)")
    seen = session.get("login_token") if session is not None else None
    if seen is not None and seen[0] == token:
        data: dict[str, Any] = seen[1]
        if data["expiration"] < time.time() * 1000:
            raise AccessError("token_expired", "invalid login token (expired)")
    else:
        try:
            data = ctx.box.read_login_token(token)
        except (CryptoError, ValueError) as exc:
            code = "token_expired" if str(exc) == "expired" else "bad_token"
            raise AccessError(code, f"invalid login token ({exc})") from exc
        if session is not None:
            session["login_token"] = (token, data)
    env = await ctx.get_env(str(data.get("id")))
    if env is None or env.public_key != data.get("key"):
        raise AccessError("bad_token", "the login token's key is no longer valid")
    return env


def voter(
    ctx: Context,
    env: Env,
    user_id: object,
    signature: object = None,
    voter_token: object = None,
    required: bool = True,
) -> Voter | None:
    """The voter a request speaks for, checked against the environment's identities (None if
    it names none and none is `required`)."""
    return identity.resolve(
        env.id,
        env.identities,
        ctx.box,
        lambda: ctx.secret_key(env),
        user_id,
        signature,
        voter_token,
        required,
    )
