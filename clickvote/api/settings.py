"""The current environment's settings: its keys (and their rotation), the voter identities
it accepts and its other abuse layers (clickvote/abuse.py). Each change empties the caches
of every instance."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from clickvote import identity
from clickvote.abuse import IP_VOTERS_MAX
from clickvote.accounts import Refused
from clickvote.api.orgs import ID_NAME, env_json
from clickvote.api.schema import (
    Answer,
    Operations,
    array,
    boolean,
    enum,
    integer,
    nullable,
    number,
    obj,
    string,
)
from clickvote.api.session import Call
from clickvote.context import Context
from clickvote.proof import MAX_DIFFICULTY
from clickvote.storage import Env

OPERATIONS = Operations()
KIND = enum(*identity.KINDS)
# the abuse layers after the voter token: API name -> (AbuseSettings field, its schema)
LAYER_FIELDS = {
    "ipWindow": ("ip_window", integer(60, 7 * 24 * 3600)),  # seconds
    "ipVoters": ("ip_voters", integer(0, IP_VOTERS_MAX)),  # 0: the window is off
    "powDifficulty": ("pow_difficulty", integer(0, MAX_DIFFICULTY)),  # bits; 0: off
    # votes per voter, stricter than the server's (0: the server's)
    "rateVoterBurst": ("rate_burst", {**number(), "minimum": 0, "maximum": 1e6}),
    "rateVoterPerSec": ("rate_per_sec", {**number(), "minimum": 0, "maximum": 1e6}),
}
ABUSE = obj(
    {
        **{name: schema for name, (_, schema) in LAYER_FIELDS.items()},
        "serverRateVoterBurst": number(),  # the server's (settings of `clickvote serve`)
        "serverRateVoterPerSec": number(),
    },
    closed=True,
)
SETTINGS = obj(
    {
        "publicKey": string(),
        "secretKey": string(),
        "identities": array(KIND),
        "identityOptions": array(
            obj({"kind": KIND, "label": string(), "protects": string()}, closed=True)
        ),
        "requireSigned": boolean(),
        "abuse": ABUSE,
        "env": ID_NAME,
    },
    closed=True,
)
CHANGE = obj(
    optional={
        # the kinds of voter accepted (clickvote.identity.KINDS)
        "identities": nullable(array(string())),
        "requireSigned": nullable(boolean()),  # the original's flag: true = signed ids only
        **{name: schema for name, (_, schema) in LAYER_FIELDS.items()},
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
        "abuse": {
            **{name: getattr(env.abuse, f) for name, (f, _) in LAYER_FIELDS.items()},
            "serverRateVoterBurst": ctx.settings.rate_voter_burst,
            "serverRateVoterPerSec": ctx.settings.rate_voter_per_sec,
        },
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
    summary="Set the current environment's voter identities and other abuse layers",
    body=CHANGE,
    session=True,
    csrf=True,
    answers={200: Answer("the settings", SETTINGS)},
)
async def settings_put(call: Call) -> dict[str, Any]:
    body, env = call.body, call.auth.env
    layers = {f: body[name] for name, (f, _) in LAYER_FIELDS.items() if name in body}
    if body.get("identities") is not None:
        try:
            kinds: tuple[str, ...] | None = identity.parse(body["identities"])
        except ValueError as exc:
            raise Refused("identities", str(exc)) from exc
    elif body.get("requireSigned") is not None:
        kinds = (identity.SIGNED,) if body["requireSigned"] else identity.DEFAULT
    elif layers:
        kinds = None
    else:
        raise Refused("identities", "required")
    if layers:
        env = await call.ctx.storage.set_env_abuse(env.id, replace(env.abuse, **layers))
    if kinds is not None:
        env = await call.ctx.storage.set_env_identities(env.id, kinds)
    await call.ctx.changed()
    return settings_json(call.ctx, env)


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
