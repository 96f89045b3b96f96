"""The hub of `clickvote serve --workers N` and the workers' links to it, in one process: the
fan-out reaches every other worker once (and the sender only locally), invalidations empty
the other workers' caches, token buckets, session counts and used proofs of work are the
hub's, and a worker whose hub is gone stops itself."""

from __future__ import annotations

import asyncio
import signal
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from clickvote import context, hublink
from clickvote import hub as hub_module
from clickvote.config import Settings
from clickvote.context import Context
from clickvote.fanout import EMIT, Message
from clickvote.hub import Hub
from clickvote.hublink import HubBuckets, HubFanout, HubLink
from clickvote.ratelimit import RateLimiter
from clickvote.storage import Env

WAIT = 5.0  # seconds: a liveness bound


@asynccontextmanager
async def hub_with(n: int) -> AsyncIterator[tuple[Hub, list[HubLink]]]:
    with tempfile.TemporaryDirectory() as rundir:
        hub = Hub(str(Path(rundir) / "hub.sock"))
        await hub.start()
        links = [HubLink(hub.path) for _ in range(n)]
        for link in links:
            await link.start()
        try:
            yield hub, links
        finally:
            for link in links:
                await link.close()
            await hub.close()


async def until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not cond():
            await asyncio.sleep(0.01)


def test_a_message_reaches_every_other_worker_once() -> None:
    async def main() -> None:
        async with hub_with(3) as (_, links):
            got: list[list[tuple[str, bool]]] = [[], [], []]
            fanouts = [HubFanout(link) for link in links]
            for i, f in enumerate(fanouts):

                def record(i: int) -> Callable[[Message, bool], Awaitable[None]]:
                    async def on(msg: Message, local: bool) -> None:
                        got[i].append((msg.room, local))

                    return on

                f.subscribe(EMIT, record(i))
                await f.start()
            await fanouts[0].publish("room", "ev", {"n": 1}, seq=3)
            await until(lambda: all(got[1:]))
            await asyncio.sleep(0.05)  # anything more would have come by now
            assert got == [[("room", True)], [("room", False)], [("room", False)]]

    asyncio.run(main())


def test_an_invalidation_empties_every_workers_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context, "CACHE_TTL", 3600.0)  # only the notice can refresh it

    async def main() -> None:
        async with hub_with(2) as (_, links):
            ctxs = [
                Context.build(Settings.from_env({}, data_dir=str(tmp_path)), link) for link in links
            ]
            loads: list[str] = []

            async def get_env(env_id: str) -> Env:
                loads.append(env_id)
                return Env(env_id, "org", "dev", 0, "pb_x", "sealed", ("signed",), 0)

            for ctx in ctxs:
                monkeypatch.setattr(ctx.storage, "get_env", get_env)
                await ctx.fanout.start()
            await ctxs[1].get_env("e")
            await ctxs[1].get_env("e")
            assert loads == ["e"]  # cached
            await ctxs[0].changed()
            await until(lambda: not ctxs[1]._cache)
            await ctxs[1].get_env("e")
            assert loads == ["e", "e"]

    asyncio.run(main())


def test_token_buckets_are_shared_by_the_workers() -> None:
    async def main() -> None:
        async with hub_with(2) as (_, links):
            limiters = [RateLimiter(3, 0.001, shared=HubBuckets(link)) for link in links]
            waits = [await limiters[i % 2].acquire("voter") for i in range(4)]
            assert waits[:3] == [0.0, 0.0, 0.0]
            assert waits[3] > 0  # the fourth take, wherever it lands, finds the bucket empty
            assert await limiters[0].acquire("other") == 0.0

    asyncio.run(main())


def test_a_proof_of_work_counts_once_across_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "USED_MAX", 3)

    async def main() -> None:
        async with hub_with(2) as (_, links):
            first, second = HubBuckets(links[0]), HubBuckets(links[1])
            assert await first.first_use("challenge-1", 60) is True
            assert await second.first_use("challenge-1", 60) is False  # a replay elsewhere
            assert await first.first_use("challenge-1", 60) is False
            assert await second.first_use("challenge-2", 60) is True
            assert await first.first_use("challenge-3", 60) is True
            assert await first.first_use("challenge-4", 60) is True  # past USED_MAX: the
            assert await second.first_use("challenge-1", 60) is True  # oldest is forgotten

    asyncio.run(main())


def test_sessions_per_address_are_counted_across_workers() -> None:
    async def main() -> None:
        async with hub_with(2) as (hub, links):
            assert [await links[i % 2].admit("1.2.3.4", 3) for i in range(4)] == [
                True,
                True,
                True,
                False,
            ]
            links[0].release("1.2.3.4")
            await until(lambda: hub.sessions["1.2.3.4"] == 2)
            assert await links[1].admit("1.2.3.4", 3) is True
            await links[1].close()  # that worker died: its two sessions are gone with it
            await until(lambda: hub.sessions["1.2.3.4"] == 1)
            assert await links[0].admit("1.2.3.4", 2) is True

    asyncio.run(main())


def test_a_worker_stops_itself_when_the_hub_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    signals: list[int] = []
    monkeypatch.setattr(hublink.os, "kill", lambda pid, sig: signals.append(sig))

    async def main() -> None:
        async with hub_with(1) as (hub, _):
            await until(lambda: len(hub.peers) == 1)
            await hub.close()
            await until(lambda: bool(signals))

    asyncio.run(main())
    assert signals == [signal.SIGTERM]


def test_no_hub_answer_falls_back_to_local_state() -> None:
    async def main() -> Any:
        link = HubLink("/nonexistent")  # never started
        return await link.admit("ip", 1), await HubBuckets(link).take("k", 1, 1, 1)

    assert asyncio.run(main()) == (None, None)
