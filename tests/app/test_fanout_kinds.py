"""Each kind of fan-out message goes to its own subscriber: the real-time layer takes emits,
the context takes invalidations (the cache of environments and groups), whichever instance
sent them and whichever version it runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from clickvote.config import Settings
from clickvote.context import Context
from clickvote.fanout import EMIT, INVALIDATE, Message
from clickvote.storage import Env


def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Context, list[str]]:
    """A context whose storage counts its reads of environments (none exists: a stand-in)."""
    ctx = Context.build(Settings.from_env({}, data_dir=str(tmp_path)))
    loads: list[str] = []

    async def get_env(env_id: str) -> Env:
        loads.append(env_id)
        return Env(env_id, "org", "dev", 0, "pb_x", "sealed", ("signed",), 0)

    monkeypatch.setattr(ctx.storage, "get_env", get_env)
    return ctx, loads


def test_emits_reach_the_emit_subscriber_and_invalidations_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, loads = build(tmp_path, monkeypatch)
    emitted: list[Message] = []

    async def emit(msg: Message, local_origin: bool) -> None:
        emitted.append(msg)

    async def scenario() -> None:
        ctx.fanout.subscribe(EMIT, emit)
        await ctx.fanout.start()
        await ctx.get_env("e")
        await ctx.get_env("e")
        assert loads == ["e"]  # cached
        await ctx.fanout.publish("i|room", "get-votes-likes-x", {"n": 1}, seq=3)
        assert [(m.room, m.event, m.seq, m.kind) for m in emitted] == [
            ("i|room", "get-votes-likes-x", 3, EMIT)
        ]
        await ctx.get_env("e")
        assert loads == ["e"]  # an emit leaves the cache alone
        await ctx.changed()
        assert len(emitted) == 1  # the emit subscriber never sees an invalidation
        await ctx.get_env("e")
        assert loads == ["e", "e"]
        await ctx.fanout.notify("a-kind-of-a-later-version")  # nobody here takes it: dropped
        assert len(emitted) == 1
        await ctx.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "raw",
    [
        '{"room":"ctl|invalidate","event":"invalidate","payload":null,"origin":"old"}',
        Message("", "", None, origin="other", kind=INVALIDATE).to_json(),
    ],
    ids=["version-before", "this-version"],
)
def test_another_instances_invalidation_empties_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    from clickvote.fanout_redis import RedisFanout

    ctx, loads = build(tmp_path, monkeypatch)
    # No Redis listens on port 9 (discard): the subscriber retries quietly in the background
    # while the test hands the instance what it would have received.
    fanout = RedisFanout("redis://127.0.0.1:9")
    ctx = Context(ctx.settings, ctx.storage, ctx.box, fanout, ctx.voter_limiter, ctx.ip_limiter)
    emitted: list[Any] = []

    async def emit(msg: Message, local_origin: bool) -> None:
        emitted.append(msg)

    async def scenario() -> None:
        fanout.subscribe(EMIT, emit)
        await fanout.start()
        try:
            await ctx.get_env("e")
            await fanout._handle(raw)
            await ctx.get_env("e")
        finally:
            await fanout.close()

    asyncio.run(scenario())
    assert loads == ["e", "e"]  # read again after the notice
    assert emitted == []
