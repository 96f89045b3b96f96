"""Organisations and their environments: list, switch (the `org` / `env` cookies), create,
rename."""

from __future__ import annotations

from typing import Any

from clickvote.accounts import check_name
from clickvote.api.errors import ApiError
from clickvote.api.schema import Answer, Operations, array, boolean, obj, string
from clickvote.api.session import Call
from clickvote.storage import Env, Org

OPERATIONS = Operations()
ID_NAME = obj({"id": string(), "name": string()}, closed=True)
LISTED = obj({"id": string(), "name": string(), "current": boolean()}, closed=True)
NAME = obj({"name": string()})
ID = obj({"id": string()})
SET_COOKIE = {"Set-Cookie": string()}


def org_json(org: Org) -> dict[str, Any]:
    return {"id": org.id, "name": org.name}


def env_json(env: Env) -> dict[str, Any]:
    return {"id": env.id, "name": env.name}


@OPERATIONS(
    "PUT",
    "/org/update",
    tag="org",
    summary="Rename the current organisation",
    body=NAME,
    session=True,
    csrf=True,
    answers={200: Answer("the organisation", ID_NAME)},
)
async def org_update(call: Call) -> dict[str, Any]:
    org = await call.ctx.storage.rename_org(call.auth.org.id, check_name(call.body["name"]))
    return org_json(org)


@OPERATIONS(
    "GET",
    "/org/list",
    tag="org",
    summary="The user's organisations",
    session=True,
    answers={200: Answer("the organisations", array(LISTED))},
)
async def org_list(call: Call) -> list[dict[str, Any]]:
    return [{**org_json(o), "current": o.id == call.auth.org.id} for o in call.auth.orgs]


@OPERATIONS(
    "POST",
    "/org/create",
    tag="org",
    summary="Create an organisation (with the default environments) and switch to it",
    body=NAME,
    session=True,
    csrf=True,
    answers={200: Answer("the new organisation", ID_NAME, headers=SET_COOKIE)},
)
async def org_create(call: Call) -> dict[str, Any]:
    ctx = call.ctx
    org = await ctx.storage.create_org(
        call.auth.user.id, check_name(call.body["name"]), ctx.default_envs()
    )
    call.set_cookie("org", org.id, httponly=False)
    call.delete_cookie("env")
    return org_json(org)


@OPERATIONS(
    "POST",
    "/org/switch",
    tag="org",
    summary="Make one of the user's organisations the current one",
    body=ID,
    session=True,
    csrf=True,
    answers={200: Answer("the organisation", ID_NAME, headers=SET_COOKIE)},
    errors=(404,),
)
async def org_switch(call: Call) -> dict[str, Any]:
    org = next((o for o in call.auth.orgs if o.id == call.body["id"]), None)
    if org is None:
        raise ApiError(404, "Organisation not found")
    call.set_cookie("org", org.id, httponly=False)
    call.delete_cookie("env")
    return org_json(org)


@OPERATIONS(
    "GET",
    "/env/list",
    tag="org",
    summary="The current organisation's environments",
    session=True,
    answers={200: Answer("the environments", array(LISTED))},
)
async def env_list(call: Call) -> list[dict[str, Any]]:
    return [{**env_json(e), "current": e.id == call.auth.env.id} for e in call.auth.envs]


@OPERATIONS(
    "POST",
    "/env/switch",
    tag="org",
    summary="Make one of the current organisation's environments the current one",
    body=ID,
    session=True,
    csrf=True,
    answers={200: Answer("the environment", ID_NAME, headers=SET_COOKIE)},
    errors=(404,),
)
async def env_switch(call: Call) -> dict[str, Any]:
    env = next((e for e in call.auth.envs if e.id == call.body["id"]), None)
    if env is None:
        raise ApiError(404, "Environment not found in the current organisation")
    call.set_cookie("env", env.id, httponly=False)
    return env_json(env)
