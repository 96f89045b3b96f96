"""Which environment and voter a request speaks for (clickvote/voters.py): each refusal is an
AccessError (key, login token) or an IdentityError (voter), with its stable code."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from clickvote import voters
from clickvote.config import Settings
from clickvote.context import Context
from clickvote.identity import IdentityError, Voter
from clickvote.storage import Env


def test_refusals_carry_their_class_and_code(tmp_path: Path) -> None:
    ctx = Context.build(Settings.from_env({}, data_dir=str(tmp_path)))
    sealed = ctx.box.seal_secret("sk_test")
    env = Env("e1", "o1", "dev", 0, "pb_x", sealed, ("signed", "unsigned"), 0)

    async def scenario() -> dict[str, tuple[type, str]]:
        await ctx.start()
        got: dict[str, tuple[type, str]] = {}
        calls = {
            "no key": voters.env_from_key(ctx, None),
            "unknown key": voters.env_from_key(ctx, "pb_nobody"),
            "no token": voters.env_from_token(ctx, ""),
            "bad token": voters.env_from_token(ctx, "garbage"),
        }
        try:
            for what, call in calls.items():
                with pytest.raises(voters.AccessError) as err:
                    await call
                got[what] = (type(err.value), err.value.code)
        finally:
            await ctx.close()
        return got

    assert asyncio.run(scenario()) == {
        "no key": (voters.AccessError, "unknown_key"),
        "unknown key": (voters.AccessError, "unknown_key"),
        "no token": (voters.AccessError, "unauthorized"),
        "bad token": (voters.AccessError, "bad_token"),
    }
    assert voters.voter(ctx, env, "alice") == Voter("unsigned", "alice")
    assert voters.voter(ctx, env, None, required=False) is None
    with pytest.raises(IdentityError) as err:
        voters.voter(ctx, env, "alice", signature="forged")
    assert err.value.code == "bad_signature"
