"""The hub of `clickvote serve --workers N` and the workers' links to it, in one process: the
fan-out reaches every other worker with sockets in the room once (and the sender only
locally), invalidations empty the other workers' caches, token buckets, session counts, used
proofs of work and IP + user-agent windows are the hub's, and a worker whose hub is gone stops
itself."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from clickvote import context, hublink
from clickvote import hub as hub_module
from clickvote.abuse import IpWindow, Refusals, day_of
from clickvote.config import Settings
from clickvote.context import Context
from clickvote.fanout import EMIT, Message
from clickvote.hub import Hub
from clickvote.hublink import HubBuckets, HubFanout, HubLink, room_line
from clickvote.ratelimit import RateLimiter
from clickvote.realtime import RateLimited, Realtime
from clickvote.sio import Conn, SocketServer
from clickvote.storage import Env
from clickvote.storage.base import AbuseSettings
from clickvote.votes import VoteError

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
        async with hub_with(3) as (hub, links):
            got: list[list[tuple[str, bool]]] = [[], [], []]
            fanouts = [HubFanout(link) for link in links]
            for i, f in enumerate(fanouts):

                def record(i: int) -> Callable[[Message, bool], Awaitable[None]]:
                    async def on(msg: Message, local: bool) -> None:
                        got[i].append((msg.room, local))

                    return on

                f.subscribe(EMIT, record(i))
                await f.start()
                links[i].interest("room", True)
            await until(lambda: len(hub.interest.get(room_line("room"), ())) == 3)
            await fanouts[0].publish("room", "ev", {"n": 1}, seq=3)
            await until(lambda: all(got[1:]))
            await asyncio.sleep(0.05)  # anything more would have come by now
            assert got == [[("room", True)], [("room", False)], [("room", False)]]

    asyncio.run(main())


def test_emits_reach_only_the_workers_with_sockets_in_their_room() -> None:
    """Room interest: none without a socket in the room, all with one, again after the link
    reconnects, and none once the last socket left."""

    async def main() -> None:
        async with hub_with(3) as (hub, links):
            got: list[list[Any]] = [[], [], []]
            fanouts = [HubFanout(link) for link in links]
            for i, f in enumerate(fanouts):

                def record(i: int) -> Callable[[Message, bool], Awaitable[None]]:
                    async def on(msg: Message, local: bool) -> None:
                        if not local:
                            got[i].append(msg.payload)

                    return on

                f.subscribe(EMIT, record(i))
                await f.start()
            room = 'i|1:e|1:g|9:post "42"\n'  # a quote and a newline: the name as JSON
            key = room_line(room)

            async def joined(n: int) -> None:
                await until(lambda: len(hub.interest.get(key, ())) == n)

            async def sent(n: int, expect: list[list[Any]]) -> None:
                await fanouts[0].publish(room, "ev", n)
                await fanouts[0].publish("other", "ev", -n)  # no socket anywhere
                with contextlib.suppress(TimeoutError):  # the assertion below says what came
                    await until(lambda: got == expect)
                await asyncio.sleep(0.05)  # anything more would have come by now
                assert got == expect

            links[1].interest(room, True)
            links[1].interest(room, True)  # a second socket: no change
            await joined(1)
            await sent(1, [[], [1], []])  # worker 2 has no socket in the room: nothing
            await links[1].close()  # the link reconnects: its interest goes along
            await joined(0)
            await links[1].start()
            await joined(1)
            await sent(2, [[], [1, 2], []])
            links[2].interest(room, True)
            await joined(2)
            await sent(3, [[], [1, 2, 3], [3]])
            links[1].interest(room, False)  # its last socket left
            await joined(1)
            await sent(4, [[], [1, 2, 3], [3, 4]])

    asyncio.run(main())


def test_a_live_update_waits_for_the_next_question_to_the_hub(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One write to the hub, not two: an emit lingers (up to LINGER) and goes with the next
    question; one still queued goes when the link closes."""
    monkeypatch.setattr(hublink, "LINGER", 60.0)  # only a question or the close sends it

    async def main() -> None:
        async with hub_with(2) as (hub, links):
            got: list[Any] = []

            async def on(msg: Message, local: bool) -> None:
                if not local:
                    got.append(msg.payload)

            sender, receiver = HubFanout(links[0]), HubFanout(links[1])
            receiver.subscribe(EMIT, on)
            await sender.start()
            await receiver.start()
            links[1].interest("room", True)
            await until(lambda: room_line("room") in hub.interest)
            await sender.publish("room", "ev", 1)
            await asyncio.sleep(0.1)
            assert got == []  # lingering
            assert await HubBuckets(links[0]).take("k", 1, 1, 1) == 0.0  # a question
            await until(lambda: got == [1])
            await sender.publish("room", "ev", 2)
            await links[0].close()
            await until(lambda: got == [1, 2])

    asyncio.run(main())


def test_a_room_reports_its_first_socket_and_its_last() -> None:
    server, seen = SocketServer(), []
    server.on_room = lambda room, present: seen.append((room, present))
    a, b = (Conn(sid, object()) for sid in ("a", "b"))  # type: ignore[arg-type]
    server.conns.update(a=a, b=b)
    server.enter_room("a", "r")
    server.enter_room("b", "r")
    server.enter_room("a", "s")
    server._drop(a)
    assert seen == [("r", True), ("s", True), ("s", False)]
    server._drop(b)
    assert seen[-1] == ("r", False)


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


def test_a_vote_asks_the_hub_once_and_a_window_refusal_takes_no_token() -> None:
    """With the IP + user-agent window and the voter's bucket both on, a vote's layers are one
    `V` line to the hub (not a `W` and a `T`); the window refusing takes no token."""

    async def main() -> None:
        async with hub_with(1) as (hub, links):
            lines: list[bytes] = []
            handle = hub.handle

            def record(writer: asyncio.StreamWriter, got: list[bytes]) -> None:
                lines.extend(got)
                handle(writer, got)

            hub.handle = record  # type: ignore[method-assign]
            limiter = RateLimiter(2, 0.001, shared=HubBuckets(links[0]))
            ctx = SimpleNamespace(voter_limiter=limiter, ip_window=IpWindow(), refusals=Refusals())
            abuse = AbuseSettings(ip_voters=1)  # and the server's rate limit
            env = Env("e", "org", "dev", 0, "pb_x", "sealed", ("signed",), 0, abuse)
            info = {"ip": "203.0.113.7", "ua": "Firefox"}

            async def layers(voter: str) -> str:
                try:
                    fake = SimpleNamespace(ctx=ctx)  # what _layers uses of a Realtime
                    await Realtime._layers(fake, env, ("g", "x"), voter, {}, info)  # type: ignore[arg-type]
                except VoteError as exc:
                    return exc.code
                except RateLimited:
                    return "rate_limited"
                return "ok"

            assert await layers("s:a") == "ok"
            assert [line[:1] for line in lines] == [b"V"]
            assert await layers("s:b") == "too_many_voters"  # a second voter from one pair
            assert [line[:1] for line in lines] == [b"V", b"V"]
            bucket = hub.limiters[(2.0, 0.001)]._buckets
            assert "v|e|s:a" in bucket and "v|e|s:b" not in bucket  # refused: no token taken
            assert [await layers("s:a") for _ in range(2)] == ["ok", "rate_limited"]
            assert len(lines) == 4 and not local_state(ctx)  # the hub decided every one
            assert ctx.refusals._counts == {
                ("e", day_of(time.time() * 1000), "ipWindow"): 1,
                ("e", day_of(time.time() * 1000), "rateLimit"): 1,
            }

    asyncio.run(main())


def local_state(ctx: Any) -> bool:
    """Whether this process' own window or buckets were used (they are not, the hub answering)."""
    return bool(ctx.ip_window._seen or ctx.voter_limiter._buckets)


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


def test_the_ip_window_is_shared_by_the_workers() -> None:
    async def main() -> None:
        async with hub_with(2) as (_, links):
            on = [HubBuckets(link) for link in links]
            admitted = [await on[i % 2].admit_voter("k", f"v{i}", 3600, 2) for i in range(5)]
            assert admitted == [True, True, False, False, False]  # two in all, not per worker
            assert await on[1].admit_voter("k", "v0", 3600, 2) is True  # known: votes again
            assert await on[0].admit_voter("k", "v1", 3600, 2) is True
            assert await on[0].admit_voter("other", "v9", 3600, 2) is True  # another key

    asyncio.run(main())


def test_the_hubs_window_forgets_voters_once_it_is_over() -> None:
    async def main() -> None:
        async with hub_with(2) as (_, links):
            on = [HubBuckets(link) for link in links]
            assert await on[0].admit_voter("k", "a", 0.2, 1) is True
            assert await on[1].admit_voter("k", "b", 0.2, 1) is False
            await asyncio.sleep(0.3)  # past the window (the hub's monotonic clock)
            assert await on[1].admit_voter("k", "b", 0.2, 1) is True
            assert await on[0].admit_voter("k", "a", 0.2, 1) is False  # b's window now

    asyncio.run(main())


def test_the_hubs_window_is_bounded() -> None:
    async def main() -> None:
        async with hub_with(1) as (hub, links):
            hub.window.max_entries = 3
            on = HubBuckets(links[0])
            assert [await on.admit_voter(f"k{i}", "a", 3600, 1) for i in range(10)] == [True] * 10
            assert hub.window._entries <= 3 and len(hub.window._seen) <= 3
            assert await on.admit_voter("k0", "b", 3600, 1) is True  # forgotten: least recent
            assert await on.admit_voter("k9", "b", 3600, 1) is False  # still remembered

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
        buckets = HubBuckets(link)
        return (
            await link.admit("ip", 1),
            await buckets.take("k", 1, 1, 1),
            await buckets.admit_voter("k", "v", 60, 1),
            await buckets.admit_and_take(("k", "v", 60, 1), ("b", 1, 1, 1)),
        )

    assert asyncio.run(main()) == (None, None, None, None)
