"""Accounts and sessions: register, log in and out, the CSRF token, the current user."""

from __future__ import annotations

import secrets
from typing import Any

from clickvote import accounts
from clickvote.api.schema import Answer, Operations, const, obj, string
from clickvote.api.session import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    Call,
    client_ip,
    throttle,
)

OPERATIONS = Operations()
SET_COOKIE = {"Set-Cookie": string()}
CREDENTIALS = obj({"email": string(), "password": string()})
NEW_ACCOUNT = obj(
    {"email": string(), "password": string(accounts.PASSWORD_MIN, accounts.PASSWORD_MAX)}
)
ID_NAME = obj({"id": string(), "name": string()}, closed=True)


def done(flag: str) -> dict[str, Any]:
    return obj({"id": string(), "email": string(), flag: const(True)}, closed=True)


@OPERATIONS(
    "POST",
    "/auth/register",
    tag="auth",
    summary="Create an account (with an organisation and its environments) and log in",
    body=NEW_ACCOUNT,
    answers={200: Answer("registered and logged in", done("register"), headers=SET_COOKIE)},
    errors=(409, 429),
)
async def register(call: Call) -> dict[str, Any]:
    ctx = call.ctx
    await throttle(ctx.login_limiter, "login|ip|" + client_ip(call.request))
    user, org = await accounts.register(ctx, call.body["email"], call.body["password"])
    await call.start_session(user)
    call.delete_cookie("env")
    call.set_cookie("org", org.id, httponly=False)
    return {"id": user.id, "email": user.email, "register": True}


@OPERATIONS(
    "POST",
    "/auth/login",
    tag="auth",
    summary="Log in (sets the session and CSRF cookies)",
    body=CREDENTIALS,
    answers={200: Answer("logged in", done("login"), headers=SET_COOKIE)},
    errors=(401, 429),
)
async def login(call: Call) -> dict[str, Any]:
    ctx = call.ctx
    email, password = call.body["email"].strip().lower(), call.body["password"]
    if not email:
        raise accounts.Refused("email", "required")
    if not password:
        raise accounts.Refused("password", "required")
    await throttle(ctx.login_limiter, "login|ip|" + client_ip(call.request))
    await throttle(ctx.login_limiter, "login|email|" + email[: accounts.EMAIL_MAX])
    user = await accounts.authenticate(ctx, email, password)
    await call.start_session(user)
    return {"id": user.id, "email": user.email, "login": True}


@OPERATIONS(
    "POST",
    "/auth/logout",
    tag="auth",
    summary="Log out (ends the session, clears the cookies)",
    session=True,
    csrf=True,
    answers={
        200: Answer("logged out", obj({"logout": const(True)}, closed=True), headers=SET_COOKIE)
    },
)
async def logout(call: Call) -> dict[str, Any]:
    await call.ctx.storage.delete_session(call.auth.session_hash)
    for name in (SESSION_COOKIE, CSRF_COOKIE, "org", "env"):
        call.delete_cookie(name)
    return {"logout": True}


@OPERATIONS(
    "GET",
    "/auth/csrf",
    tag="auth",
    summary="The CSRF token (the csrftoken cookie's value) and the header to send it in",
    answers={
        200: Answer(
            "the token",
            obj({"csrfToken": string(), "header": const(CSRF_HEADER)}, closed=True),
            headers=SET_COOKIE,
        )
    },
)
async def csrf(call: Call) -> dict[str, Any]:
    token = call.request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    call.set_cookie(CSRF_COOKIE, token, httponly=False)
    return {"csrfToken": token, "header": CSRF_HEADER}


SELF = obj(
    {
        "id": string(),
        "email": string(),
        "currentEnv": obj({"id": string(), "name": string(), "public_key": string()}, closed=True),
        "env": {"type": "array", "items": ID_NAME},
        "org": {"type": "array", "items": ID_NAME},
        "currentOrg": ID_NAME,
    },
    closed=True,
)


@OPERATIONS(
    "GET",
    "/users/self",
    tag="users",
    summary="The logged-in user, their organisations and environments, the current ones",
    session=True,
    answers={200: Answer("the user", SELF)},
)
async def users_self(call: Call) -> dict[str, Any]:
    auth = call.auth
    return {
        "id": auth.user.id,
        "email": auth.user.email,
        "currentEnv": {"id": auth.env.id, "name": auth.env.name, "public_key": auth.env.public_key},
        "env": [{"id": e.id, "name": e.name} for e in auth.envs],
        "org": [{"id": o.id, "name": o.name} for o in auth.orgs],
        "currentOrg": {"id": auth.org.id, "name": auth.org.name},
    }
