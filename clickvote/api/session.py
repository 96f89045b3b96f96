"""A request as the handlers see it (`Call`), and the dashboard's session: who is logged in
(the `auth` cookie), their current organisation and environment (the `org` and `env`
cookies), the CSRF check of unsafe requests, rate limits by client address."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from clickvote.api.errors import ApiError
from clickvote.context import Context
from clickvote.ratelimit import RateLimiter, retry_after
from clickvote.security import hash_token, new_session_token
from clickvote.storage import Env, Org, User

SESSION_COOKIE = "auth"
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = frozenset({"POST", "PUT", "DELETE", "PATCH"})


@dataclass
class Auth:
    user: User
    orgs: list[Org]
    org: Org
    envs: list[Env]
    env: Env
    session_hash: str


@dataclass
class Call:
    """One request to an operation: validated parameters and body, the session where the
    operation needs one, and `response`, whose cookies and headers go with the answer."""

    request: Request
    ctx: Context
    params: dict[str, Any] = field(default_factory=dict)  # path and query, validated
    headers: dict[str, Any] = field(default_factory=dict)  # declared headers, validated
    body: Any = None
    auth_: Auth | None = None
    response: Response = field(default_factory=Response)

    @property
    def auth(self) -> Auth:
        assert self.auth_ is not None, "declared without session=True"
        return self.auth_

    def set_cookie(self, name: str, value: str, httponly: bool = True) -> None:
        settings = self.ctx.settings
        self.response.set_cookie(
            name,
            value,
            max_age=settings.session_ttl,
            httponly=httponly,
            samesite="lax",
            secure=settings.secure_cookies,
            path="/",
        )

    def delete_cookie(self, name: str) -> None:
        self.response.delete_cookie(name, path="/")

    async def start_session(self, user: User) -> None:
        token, token_hash = new_session_token()
        expires = now_ms() + self.ctx.settings.session_ttl * 1000
        await self.ctx.storage.create_session(token_hash, user.id, expires)
        self.set_cookie(SESSION_COOKIE, token)
        self.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(24), httponly=False)


def now_ms() -> int:
    return int(time.time() * 1000)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def throttle(limiter: RateLimiter, key: str, cost: float = 1.0) -> None:
    """Take from `key`'s bucket, or answer 429 with the wait (header and body)."""
    wait = await limiter.acquire(key, cost)
    if wait:
        raise ApiError(429, f"Too many requests, retry in {retry_after(wait)} s", wait=wait)


def check_csrf(request: Request) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), header.encode()):
        raise ApiError(
            403,
            f"CSRF check failed: send the {CSRF_COOKIE} cookie's value in the {CSRF_HEADER} header",
        )


async def current(request: Request, ctx: Context, csrf: bool) -> Auth:
    """The logged-in user with their organisations and environments (401 without a live
    session; 403 when `csrf` and the CSRF header doesn't match its cookie)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        raise ApiError(401, "Not logged in")
    token_hash = hash_token(token)
    user = await ctx.storage.get_session_user(token_hash, now_ms())
    if user is None:
        raise ApiError(401, "Session expired or invalid")
    if csrf:
        check_csrf(request)
    orgs = await ctx.storage.list_orgs(user.id)
    if not orgs:
        raise ApiError(403, "This user belongs to no organisation")
    wanted = request.cookies.get("org")
    org = next((o for o in orgs if o.id == wanted), orgs[0])
    envs = await ctx.storage.list_envs(org.id)
    if not envs:
        raise ApiError(403, "This organisation has no environment")
    wanted_env = request.cookies.get("env")
    env = next((e for e in envs if e.id == wanted_env), envs[0])
    return Auth(user, orgs, org, envs, env, token_hash)
