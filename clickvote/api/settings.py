"""The current environment's settings: its keys (and their rotation) and the voter
identities it accepts. Each change empties the caches of every instance."""

from __future__ import annotations

from typing import Any

from clickvote import identity
from clickvote.accounts import Refused
from clickvote.api.orgs import ID_NAME, env_json
from clickvote.api.schema import Answer, Operations, array, boolean, enum, nullable, obj, string
from clickvote.api.session import Call
from clickvote.context import Context
from clickvote.storage import Env

OPERATIONS = Operations()
KIND = enum(*identity.KINDS)
SETTINGS = obj(
    {
        "publicKey": string(),
        "secretKey": string(),
        "identities": array(KIND),
        "identityOptions": array(
            obj({"kind": KIND, "label": string(), "protects": string()}, closed=True)
        ),
        "requireSigned": boolean(),
        "env": ID_NAME,
    },
    closed=True,
)
CHANGE = obj(
    optional={
        # the kinds of voter accepted (clickvote.identity.KINDS)
        "identities": nullable(array(string())),
        "requireSigned": nullable(boolean()),  # the original's flag: true = signed ids only
    }
)


def settings_json(ctx: Context, env: Env) -> dict[str, Any]:
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


async def set_identities(ctx: Context, env: Env, kinds: tuple[str, ...]) -> Env:
    """The kinds of voter `env` accepts, everywhere at once (the caches are emptied)."""
    updated = await ctx.storage.set_env_identities(env.id, kinds)
    await ctx.changed()
    return updated


@OPERATIONS(
    "GET",
    "/settings/",
    tag="settings",
    summary="The current environment's keys and accepted voter identities",
    session=True,
    answers={200: Answer("the settings", SETTINGS)},
)
async def settings_get(call: Call) -> dict[str, Any]:
    return settings_json(call.ctx, call.auth.env)


@OPERATIONS(
    "PUT",
    "/settings/",
    tag="settings",
    summary="Set the voter identities the current environment accepts",
    body=CHANGE,
    session=True,
    csrf=True,
    answers={200: Answer("the settings", SETTINGS)},
)
async def settings_put(call: Call) -> dict[str, Any]:
    body = call.body
    if body.get("identities") is not None:
        try:
            kinds = identity.parse(body["identities"])
        except ValueError as exc:
            raise Refused("identities", str(exc)) from exc
    elif body.get("requireSigned") is not None:
        kinds = (identity.SIGNED,) if body["requireSigned"] else identity.DEFAULT
    else:
        raise Refused("identities", "required")
    return settings_json(call.ctx, await set_identities(call.ctx, call.auth.env, kinds))


@OPERATIONS(
    "POST",
    "/settings/rotate",
    tag="settings",
    summary="New public and secret keys for the current environment",
    session=True,
    csrf=True,
    answers={200: Answer("the settings", SETTINGS)},
)
async def settings_rotate(call: Call) -> dict[str, Any]:
    return settings_json(call.ctx, await call.ctx.rotate_keys(call.auth.env))
