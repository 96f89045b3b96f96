"""The JSON API (the original's paths and shapes, plus what was missing)."""

from __future__ import annotations

import asyncio
import hmac
import math
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from clickvote import identity, jsonfast
from clickvote.context import Context
from clickvote.fields import MAX_NAME, FieldError, check_tree
from clickvote.ratelimit import RateLimiter, retry_after, retry_after_header
from clickvote.security import (
    LegacyHashError,
    check_password,
    hash_password,
    hash_token,
    needs_rehash,
    new_session_token,
)
from clickvote.storage import Conflict, Env, Group, NotFound, Org, User
from clickvote.votes import (
    RANGE_MAX,
    RANGE_MIN,
    SINGLE,
    TYPES,
    VoteError,
    current_state,
    totals,
)

SESSION_COOKIE = "auth"
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "X-CSRF-Token"
CSRF_EXEMPT = {"/auth/register", "/auth/login"}
UNSAFE = {"POST", "PUT", "DELETE", "PATCH"}
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
RANGES = {"1d": 1, "7d": 7, "30d": 30, "1y": 365}
_dummy_hashes: dict[int, str] = {}
LEGACY_HASH_MESSAGE = (
    "This account's password was saved by an earlier ClickVote with bcrypt, which this "
    "installation does not have: ask the administrator to set a new one with "
    "`clickvote setpassword --email EMAIL --password NEW`"
)


def dummy_hash(rounds: int) -> str:
    """A real hash to check when the email is unknown, so timing doesn't reveal accounts."""
    if rounds not in _dummy_hashes:
        _dummy_hashes[rounds] = hash_password(secrets.token_hex(8), rounds)
    return _dummy_hashes[rounds]


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, field: str | None = None, wait: float | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.wait = wait  # a 429's wait in seconds


async def throttle(limiter: RateLimiter, key: str, cost: float = 1.0) -> None:
    """Take from `key`'s bucket, or answer 429 with the wait (header and body)."""
    wait = await limiter.acquire(key, cost)
    if wait:
        raise ApiError(429, f"Too many requests, retry in {retry_after(wait)} s", wait=wait)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "statusCode": status}
    if field:
        body["field"] = field
    return body


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        body = error_body(exc.status, exc.message, exc.field)
        if exc.wait is None:
            return JSONResponse(body, exc.status)
        body["retryAfter"] = retry_after(exc.wait)  # seconds, to the millisecond
        headers = {"Retry-After": retry_after_header(exc.wait)}
        return JSONResponse(body, exc.status, headers=headers)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse(
            error_body(exc.status_code, str(exc.detail)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or "body"
        message = f"{field}: {first.get('msg', 'invalid')}"
        body = error_body(422, message, field)
        body["errors"] = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ())[1:]) or "body",
                "message": str(e.get("msg")),
            }
            for e in errors
        ]
        return JSONResponse(body, 422)

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Conflict)
        return JSONResponse(error_body(409, exc.message, exc.field), 409)

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body(404, f"{exc} not found"), 404)

    async def field_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FieldError)
        body = error_body(422, exc.message, exc.field)
        body["code"] = "bad_payload"
        return JSONResponse(body, 422)

    async def vote_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, VoteError)
        status = 404 if exc.code in ("unknown_key", "unknown_group") else 400
        if exc.code in identity.FORBIDDEN:
            status = 403
        body = error_body(status, exc.message)
        body["code"] = exc.code
        return JSONResponse(body, status)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Conflict, conflict)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(VoteError, vote_error)
    app.add_exception_handler(FieldError, field_error)


class BodyLimit:
    """ASGI: a request body over `max_body` bytes answers 413. The body is read as it arrives
    (a declared Content-Length over the limit is refused at once), then handed on whole: at
    most `max_body` bytes of it are ever held. The rest of a refused body is read and dropped
    by the HTTP layer (closing instead would reset the connection before the client reads
    the 413)."""

    def __init__(self, app: Any, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_body:
            await self._refuse(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body: bytes | None = b"".join(chunks)

        async def replay() -> Any:
            nonlocal body
            if body is None:
                return await receive()
            message, body = {"type": "http.request", "body": body, "more_body": False}, None
            return message

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        message = f"Request body over {self.max_body} bytes"
        await JSONResponse(error_body(413, message), 413)(scope, receive, send)


# --- request bodies -------------------------------------------------------------------------
class Credentials(BaseModel):
    email: str
    password: str


class NameBody(BaseModel):
    name: str


class IdBody(BaseModel):
    id: str


class GroupBody(BaseModel):
    name: str
    type: str
    start: int | None = None
    end: int | None = None


class GroupPatch(BaseModel):
    name: str | None = None
    type: str | None = None
    start: int | None = None
    end: int | None = None


class SettingsBody(BaseModel):
    identities: list[str] | None = None  # clickvote.identity.KINDS accepted by the environment
    requireSigned: bool | None = None  # the original's flag: true = signed ids only


# --- helpers ------------------------------------------------------------------------------
def ctx_of(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Auth:
    user: User
    orgs: list[Org]
    org: Org
    envs: list[Env]
    env: Env
    session_hash: str


async def current(request: Request) -> Auth:
    ctx = ctx_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        raise ApiError(401, "Not logged in")
    token_hash = hash_token(token)
    user = await ctx.storage.get_session_user(token_hash, now_ms())
    if user is None:
        raise ApiError(401, "Session expired or invalid")
    if request.method in UNSAFE and request.url.path not in CSRF_EXEMPT:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        header = request.headers.get(CSRF_HEADER, "")
        if not cookie or not hmac.compare_digest(cookie.encode(), header.encode()):
            raise ApiError(
                403,
                f"CSRF check failed: send the {CSRF_COOKIE} cookie's value "
                f"in the {CSRF_HEADER} header",
            )
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


AuthDep = Annotated[Auth, Depends(current)]


def set_cookie(
    response: Response, request: Request, name: str, value: str, httponly: bool = True
) -> None:
    settings = ctx_of(request).settings
    response.set_cookie(
        name,
        value,
        max_age=settings.session_ttl,
        httponly=httponly,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


async def start_session(request: Request, response: Response, user: User) -> None:
    ctx = ctx_of(request)
    token, token_hash = new_session_token()
    expires = now_ms() + ctx.settings.session_ttl * 1000
    await ctx.storage.create_session(token_hash, user.id, expires)
    set_cookie(response, request, SESSION_COOKIE, token)
    set_cookie(response, request, CSRF_COOKIE, secrets.token_urlsafe(24), httponly=False)


def check_credentials(body: Credentials) -> tuple[str, str]:
    email = body.email.strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise ApiError(422, "email: must be a valid email address", "email")
    if len(body.password) < 8:
        raise ApiError(422, "password: must be at least 8 characters", "password")
    if len(body.password) > 200:
        raise ApiError(422, "password: must be at most 200 characters", "password")
    return email, body.password


async def check_fields(request: Request) -> None:
    """Every route: the shared field rules (clickvote.fields) for the path, the query and a
    JSON body, before anything reaches storage."""
    check_tree(request.path_params)
    check_tree(dict(request.query_params))
    if request.method in UNSAFE and "json" in request.headers.get("content-type", ""):
        try:
            body = jsonfast.loads((await request.body()).decode("utf-8"))
        except ValueError:
            return  # FastAPI answers a malformed body itself
        check_tree(body)


def check_name(name: str, field: str = "name", minimum: int = 2, maximum: int = MAX_NAME) -> str:
    name = name.strip()
    if len(name) < minimum:
        raise ApiError(422, f"{field}: must be at least {minimum} characters", field)
    if len(name) > maximum:
        raise ApiError(422, f"{field}: must be at most {maximum} characters", field)
    return name


def check_group(
    name: str, type_: str, start: int | None, end: int | None
) -> tuple[str, str, int | None, int | None]:
    name = check_name(name)
    if type_ not in TYPES:
        raise ApiError(422, "type: must be 'single' or 'range'", "type")
    if type_ == SINGLE:
        return name, type_, None, None
    if start is None:
        raise ApiError(422, "start: required for a range group", "start")
    if end is None:
        raise ApiError(422, "end: required for a range group", "end")
    if start < RANGE_MIN:
        raise ApiError(422, f"start: must be at least {RANGE_MIN}", "start")
    if end > RANGE_MAX:
        raise ApiError(422, f"end: must be at most {RANGE_MAX}", "end")
    if start >= end:
        raise ApiError(422, "start: must be less than end", "start")
    return name, type_, start, end


def org_json(org: Org) -> dict[str, Any]:
    return {"id": org.id, "name": org.name}


def env_json(env: Env) -> dict[str, Any]:
    return {"id": env.id, "name": env.name}


def group_json(group: Group, stats: dict[str, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": group.id,
        "_id": group.id,
        "name": group.name,
        "type": group.type,
        "start": group.start,
        "end": group.end,
        "createdAt": group.created_at,
    }
    if stats is not None:
        out.update(stats)
    return out


def iso_hour(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:00:00Z")


async def group_by_name_or_id(ctx: Context, env: Env, name: str) -> Group:
    group = await ctx.storage.get_group_by_name(env.id, name)
    if group is None:
        group = await ctx.storage.get_group(env.id, name)
    if group is None:
        raise ApiError(404, f"Vote group {name!r} not found")
    return group


def since_for(date_range: str) -> int:
    if date_range not in RANGES:
        raise ApiError(422, "dateRange: must be one of 1d, 7d, 30d, 1y", "dateRange")
    return now_ms() - RANGES[date_range] * 24 * 3600 * 1000


# --- routes ----------------------------------------------------------------------------------
def build_router() -> APIRouter:
    r = APIRouter(dependencies=[Depends(check_fields)])

    # auth ------------------------------------------------------------------------------------
    @r.post("/auth/register", tags=["auth"])
    async def register(body: Credentials, request: Request, response: Response) -> dict:
        ctx = ctx_of(request)
        await throttle(ctx.login_limiter, "login|ip|" + client_ip(request))
        email, password = check_credentials(body)
        if await ctx.storage.get_user_by_email(email):
            raise ApiError(409, "Email already exists", "email")
        hashed = await asyncio.to_thread(hash_password, password, ctx.settings.bcrypt_rounds)
        user = await ctx.storage.create_user(email, hashed)
        org = await ctx.storage.create_org(user.id, email.split("@")[0], ctx.default_envs())
        await start_session(request, response, user)
        response.delete_cookie("env", path="/")
        set_cookie(response, request, "org", org.id, httponly=False)
        return {"id": user.id, "email": user.email, "register": True}

    @r.post("/auth/login", tags=["auth"])
    async def login(body: Credentials, request: Request, response: Response) -> dict:
        ctx = ctx_of(request)
        email = body.email.strip().lower()
        if not email:
            raise ApiError(422, "email: required", "email")
        if not body.password:
            raise ApiError(422, "password: required", "password")
        await throttle(ctx.login_limiter, "login|ip|" + client_ip(request))
        await throttle(ctx.login_limiter, "login|email|" + email[:254])
        user = await ctx.storage.get_user_by_email(email)
        hashed = user.password_hash if user else dummy_hash(ctx.settings.bcrypt_rounds)
        try:
            ok = await asyncio.to_thread(check_password, body.password[:200], hashed)
        except LegacyHashError as exc:
            raise ApiError(401, LEGACY_HASH_MESSAGE) from exc
        if user is None or not ok:
            raise ApiError(401, "Wrong email or password")
        if needs_rehash(hashed, ctx.settings.bcrypt_rounds):
            rehashed = await asyncio.to_thread(
                hash_password, body.password[:200], ctx.settings.bcrypt_rounds
            )
            await ctx.storage.set_password_hash(user.id, rehashed)
        await start_session(request, response, user)
        return {"id": user.id, "email": user.email, "login": True}

    @r.post("/auth/logout", tags=["auth"])
    async def logout(request: Request, response: Response, auth: AuthDep) -> dict:
        await ctx_of(request).storage.delete_session(auth.session_hash)
        for name in (SESSION_COOKIE, CSRF_COOKIE, "org", "env"):
            response.delete_cookie(name, path="/")
        return {"logout": True}

    @r.get("/auth/csrf", tags=["auth"])
    async def csrf(request: Request, response: Response) -> dict:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        set_cookie(response, request, CSRF_COOKIE, token, httponly=False)
        return {"csrfToken": token, "header": CSRF_HEADER}

    # user / org / env -------------------------------------------------------------------------
    @r.get("/users/self", tags=["users"])
    async def users_self(auth: AuthDep) -> dict:
        return {
            "id": auth.user.id,
            "email": auth.user.email,
            "currentEnv": {
                "id": auth.env.id,
                "name": auth.env.name,
                "public_key": auth.env.public_key,
            },
            "env": [env_json(e) for e in auth.envs],
            "org": [org_json(o) for o in auth.orgs],
            "currentOrg": org_json(auth.org),
        }

    @r.put("/org/update", tags=["org"])
    async def org_update(body: NameBody, request: Request, auth: AuthDep) -> dict:
        org = await ctx_of(request).storage.rename_org(auth.org.id, check_name(body.name))
        return org_json(org)

    @r.get("/org/list", tags=["org"])
    async def org_list(auth: AuthDep) -> list[dict]:
        return [{**org_json(o), "current": o.id == auth.org.id} for o in auth.orgs]

    @r.post("/org/create", tags=["org"])
    async def org_create(
        body: NameBody, request: Request, response: Response, auth: AuthDep
    ) -> dict:
        ctx = ctx_of(request)
        org = await ctx.storage.create_org(auth.user.id, check_name(body.name), ctx.default_envs())
        set_cookie(response, request, "org", org.id, httponly=False)
        response.delete_cookie("env", path="/")
        return org_json(org)

    @r.post("/org/switch", tags=["org"])
    async def org_switch(body: IdBody, request: Request, response: Response, auth: AuthDep) -> dict:
        org = next((o for o in auth.orgs if o.id == body.id), None)
        if org is None:
            raise ApiError(404, "Organisation not found")
        set_cookie(response, request, "org", org.id, httponly=False)
        response.delete_cookie("env", path="/")
        return org_json(org)

    @r.get("/env/list", tags=["org"])
    async def env_list(auth: AuthDep) -> list[dict]:
        return [{**env_json(e), "current": e.id == auth.env.id} for e in auth.envs]

    @r.post("/env/switch", tags=["org"])
    async def env_switch(body: IdBody, request: Request, response: Response, auth: AuthDep) -> dict:
        env = next((e for e in auth.envs if e.id == body.id), None)
        if env is None:
            raise ApiError(404, "Environment not found in the current organisation")
        set_cookie(response, request, "env", env.id, httponly=False)
        return env_json(env)

    # settings -----------------------------------------------------------------------------
    def settings_json(ctx: Context, env: Env) -> dict:
        return {
            "publicKey": env.public_key,
            "secretKey": ctx.secret_key(env),
            "identities": list(env.identities),
            "identityOptions": [
                {"kind": k, "label": identity.LABELS[k], "protects": identity.PROTECTS[k]}
                for k in identity.KINDS
            ],
            "requireSigned": identity.signed_only(env.identities),
            "env": env_json(env),
        }

    @r.get("/settings/", tags=["settings"])
    async def settings_get(request: Request, auth: AuthDep) -> dict:
        return settings_json(ctx_of(request), auth.env)

    @r.put("/settings/", tags=["settings"])
    async def settings_put(body: SettingsBody, request: Request, auth: AuthDep) -> dict:
        ctx = ctx_of(request)
        if body.identities is not None:
            try:
                kinds = identity.parse(body.identities)
            except ValueError as exc:
                raise ApiError(422, f"identities: {exc}", "identities") from exc
        elif body.requireSigned is not None:
            kinds = (identity.SIGNED,) if body.requireSigned else identity.DEFAULT
        else:
            raise ApiError(422, "identities: required", "identities")
        env = await ctx.storage.set_env_identities(auth.env.id, kinds)
        await ctx.changed()
        return settings_json(ctx, env)

    @r.post("/settings/rotate", tags=["settings"])
    async def settings_rotate(request: Request, auth: AuthDep) -> dict:
        ctx = ctx_of(request)
        return settings_json(ctx, await ctx.rotate_keys(auth.env))

    # vote groups ------------------------------------------------------------------------------
    @r.get("/votes/", tags=["votes"])
    async def votes_list(
        request: Request,
        auth: AuthDep,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> dict:
        ctx = ctx_of(request)
        items, total = await ctx.storage.list_groups(auth.env.id, (page - 1) * limit, limit)
        stats = await ctx.storage.group_stats([g.id for g in items])
        return {
            "items": [group_json(g, stats.get(g.id)) for g in items],
            "total": total,
            "page": page,
            "limit": limit,
            "pages": max(1, math.ceil(total / limit)),
        }

    @r.post("/votes/", tags=["votes"])
    async def votes_create(body: GroupBody, request: Request, auth: AuthDep) -> dict:
        name, type_, start, end = check_group(body.name, body.type, body.start, body.end)
        group = await ctx_of(request).storage.create_group(auth.env.id, name, type_, start, end)
        return group_json(group)

    @r.get("/votes/{group_id}", tags=["votes"])
    async def votes_get(group_id: str, request: Request, auth: AuthDep) -> dict:
        ctx = ctx_of(request)
        group = await ctx.storage.get_group(auth.env.id, group_id)
        if group is None:
            raise ApiError(404, "Vote group not found")
        stats = await ctx.storage.group_stats([group.id])
        return group_json(group, stats[group.id])

    @r.put("/votes/{group_id}", tags=["votes"])
    async def votes_update(
        group_id: str, body: GroupPatch, request: Request, auth: AuthDep
    ) -> dict:
        ctx = ctx_of(request)
        group = await ctx.storage.get_group(auth.env.id, group_id)
        if group is None:
            raise ApiError(404, "Vote group not found")
        given = body.model_dump(exclude_unset=True)
        merged_type = given.get("type") or group.type
        name, type_, start, end = check_group(
            group.name if given.get("name") is None else str(given["name"]),
            merged_type,
            given.get("start", group.start),
            given.get("end", group.end),
        )
        changes: dict[str, Any] = {}
        if name != group.name:
            changes["name"] = name
        shape = {"type": type_, "start": start, "end": end}
        if shape != {"type": group.type, "start": group.start, "end": group.end}:
            if await ctx.storage.group_has_votes(group.id):
                raise ApiError(409, "The type or range of a group with votes can't change", "type")
            changes.update(shape)
        if changes:
            group = await ctx.storage.update_group(auth.env.id, group.id, changes)
            await ctx.changed()
        return group_json(group)

    @r.delete("/votes/{group_id}", tags=["votes"])
    async def votes_delete(group_id: str, request: Request, auth: AuthDep) -> dict:
        ctx = ctx_of(request)
        if not await ctx.storage.delete_group(auth.env.id, group_id):
            raise ApiError(404, "Vote group not found")
        await ctx.changed()
        return {"id": group_id, "deleted": True}

    @r.get("/votes/{name}/analytics", tags=["analytics"])
    async def votes_analytics(
        name: str, request: Request, auth: AuthDep, dateRange: str = "7d", voteTo: str | None = None
    ) -> list[dict]:
        ctx = ctx_of(request)
        group = await group_by_name_or_id(ctx, auth.env, name)
        rows = await ctx.storage.analytics(
            auth.env.id, group.id, voteTo or None, since_for(dateRange)
        )
        return [{"_id": iso_hour(h), "hour": h, "count": c} for h, c in rows]

    @r.get("/votes/{name}/to", tags=["analytics"])
    async def votes_to(name: str, request: Request, auth: AuthDep) -> list[str]:
        ctx = ctx_of(request)
        group = await group_by_name_or_id(ctx, auth.env, name)
        return await ctx.storage.distinct_vote_to(group.id)

    @r.get("/votes/{name}/stats", tags=["analytics"])
    async def votes_stats(
        name: str, request: Request, auth: AuthDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50
    ) -> dict:
        ctx = ctx_of(request)
        group = await group_by_name_or_id(ctx, auth.env, name)
        stats = (await ctx.storage.group_stats([group.id]))[group.id]
        items = await ctx.storage.item_tallies(group.id, limit)
        # `items` is the number of items, as everywhere; `top` lists the leading ones
        return {
            **group_json(group, stats),
            "top": [{"voteTo": vt, **totals(group, t)} for vt, t in items],
        }

    @r.get("/analytics/data", tags=["analytics"])
    async def analytics_all(
        request: Request,
        auth: AuthDep,
        dateRange: str = "7d",
        group: str | None = None,
        voteTo: str | None = None,
    ) -> list[dict]:
        ctx = ctx_of(request)
        group_id = (await group_by_name_or_id(ctx, auth.env, group)).id if group else None
        rows = await ctx.storage.analytics(
            auth.env.id, group_id, voteTo or None, since_for(dateRange)
        )
        return [{"_id": iso_hour(h), "hour": h, "count": c} for h, c in rows]

    # public, for embeds (CORS: any origin, no credentials) --------------------------------
    @r.get("/api/votes", tags=["public"])
    async def public_votes(
        request: Request,
        key: str,
        id: str,
        voteTo: str,
        userId: str | None = None,
        signature: str | None = None,
        voterToken: str | None = None,
    ) -> dict:
        ctx = ctx_of(request)
        await throttle(ctx.ip_limiter, "ip|" + client_ip(request))  # as the socket's get-votes
        env = await ctx.env_from_key(key)
        group = await ctx.storage.get_group_by_name(env.id, id)
        if group is None:
            raise VoteError("unknown_group", f"no vote group named {id!r}")
        voter = ctx.resolve_voter(env, userId, signature, voterToken, required=False)
        if voter is None:
            return await current_state(ctx.storage, group, voteTo, None)
        return await current_state(ctx.storage, group, voteTo, voter.key, voter.legacy)

    @r.get("/api/voter-token", tags=["public"])
    async def voter_token(request: Request, key: str) -> dict:
        ctx = ctx_of(request)
        await throttle(ctx.ip_limiter, "ip|" + client_ip(request), cost=5)
        env = await ctx.env_from_key(key)
        identity.check_voter_token(env.identities)
        voter_id, token, expiration = ctx.box.voter_token(env.id, ctx.settings.voter_token_ttl)
        return {"voterId": voter_id, "token": token, "expiration": expiration}

    return r
