"""Many concurrent clients voting over several groups and items, a share of the votes sent
twice at once: exact totals afterwards, each double click counted once, and every client's
last broadcast per item agrees with the totals.

The clients are clickvote/client.py's asyncio Socket.IO client, all in one event loop: 200
python-socketio sync clients need two threads each and, on these 2-core machines, the test
process itself became the bottleneck (acks queued behind its own threads for seconds).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clickvote.client import SioClient

from .conftest import TIMEOUT, Dashboard, Server, setup, truth
from .procserver import ServerProcess, votes_table

Truth = Callable[[str, str], tuple[int, int]]

GROUPS = {"h-stars": "range", "h-ups": "single"}
CONNECT_AT_ONCE = 50
STORM_LIMIT = 300.0  # seconds for all the votes of one storm
DOUBLE_CLICKS = 0.2  # share of votes sent twice at once (one msgId): must count once


def storm(
    url: str, dash: Dashboard, the_truth: Truth, n_clients: int, n_votes: int, n_items: int
) -> None:
    pk = setup(dash, "h-stars", "range", start=1, end=5)
    setup(dash, "h-ups")
    asyncio.run(_storm(url, pk, dash, the_truth, n_clients, n_votes, n_items))


async def _storm(
    url: str,
    pk: str,
    dash: Dashboard,
    the_truth: Truth,
    n_clients: int,
    n_votes: int,
    n_items: int,
) -> None:
    items = [f"p{i}" for i in range(n_items)]
    rng = random.Random(n_clients * 1000 + n_votes)
    users = [f"user{i}" for i in range(max(4, n_clients // 4))]  # shared: concurrent updates
    # each client is a page showing two (group, item) widgets, as in real use: rooms stay
    # small enough that 200 clients do not turn the test into a fan-out benchmark
    pages = [
        [(rng.choice(list(GROUPS)), rng.choice(items)) for _ in range(2)] for _ in range(n_clients)
    ]
    plans = [
        [(*rng.choice(pages[i]), rng.choice(users)) for _ in range(n_votes)]
        for i in range(n_clients)
    ]
    # per client: event name -> the latest vote broadcast or own update it received (an own
    # vote's update comes in its acknowledgement), recorded as each frame arrives
    latest: list[dict[str, Any]] = [{} for _ in range(n_clients)]

    def recorder(i: int) -> Callable[[str, Any, float], None]:
        def on_event(name: str, data: Any, _now: float) -> None:
            if isinstance(data, dict) and "total" in data:
                latest[i][name] = data

        return on_event

    def ack_recorder(i: int, group: str, item: str) -> Callable[[Any, float], None]:
        on_event = recorder(i)
        return lambda ack, now: on_event(f"get-votes-{group}-{item}", ack, now)

    conns = [SioClient(url, recorder(i)) for i in range(n_clients)]
    sem = asyncio.Semaphore(CONNECT_AT_ONCE)

    async def connect(c: SioClient) -> str:
        async with sem:
            await c.connect(timeout=TIMEOUT)
            ack = await c.call("login", {"apiKey": pk}, timeout=TIMEOUT)
            assert ack["ok"], ack
            return str(ack["token"])

    try:
        tokens = await asyncio.gather(*(connect(c) for c in conns))
        errors: list[Any] = []
        subscribed: list[set[tuple[str, str]]] = [set() for _ in conns]

        async def run(i: int) -> None:
            vr = random.Random(i)
            try:
                for j, (group, item, user) in enumerate(plans[i]):
                    value = vr.randrange(0, 6) if group == "h-stars" else vr.choice([-1, 0, 1])
                    msg = {"id": group, "voteTo": item, "userId": user, "value": value}
                    msg.update(token=tokens[i], msgId=f"{i}-{j}")
                    on_ack = ack_recorder(i, group, item)
                    if vr.random() < DOUBLE_CLICKS:  # the same message twice at once
                        acks = await asyncio.gather(
                            *(
                                conns[i].call("vote", msg, timeout=TIMEOUT, on_ack=on_ack)
                                for _ in range(2)
                            )
                        )
                        if sorted(bool(a.get("replayed")) for a in acks) != [False, True]:
                            errors.append({"double click counted": acks})
                    else:
                        acks = [await conns[i].call("vote", msg, timeout=TIMEOUT, on_ack=on_ack)]
                    errors.extend(a for a in acks if not a.get("ok"))
                    subscribed[i].add((group, item))
            except Exception as exc:  # a lost call fails the test below, with its reason
                errors.append(f"client {i}: {exc!r}")

        await asyncio.wait_for(asyncio.gather(*(run(i) for i in range(n_clients))), STORM_LIMIT)
        assert not errors, errors[:3]

        ids = {g["name"]: g["id"] for g in dash.get("/votes/?limit=100").json()["items"]}
        expected: dict[tuple[str, str], tuple[int, int]] = {}
        for group in GROUPS:
            for item in items:
                voters, total = the_truth(ids[group], item)
                expected[(group, item)] = (voters, total)
                msg = {"id": group, "voteTo": item, "token": tokens[0]}
                st = await conns[0].call("get-votes", msg, timeout=TIMEOUT)
                assert st["ok"]
                assert (st["total"]["voters"], st["total"]["sum"]) == (voters, total), (group, item)

        # Every client's latest broadcast for every item it votes on matches the truth. Waiting
        # is bounded (events still in flight); the assertion is on values, not on time.
        wants = [
            {f"get-votes-{g}-{it}": expected[(g, it)] for g, it in subscribed[i]}
            for i in range(n_clients)
        ]
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if all(seen(latest[i], wants[i]) == wants[i] for i in range(n_clients)):
                break
            await asyncio.sleep(0.1)
        for i in range(n_clients):
            got = seen(latest[i], wants[i])
            assert got == wants[i], f"client {i}: last broadcasts {got} != truth {wants[i]}"
    finally:
        for c in conns:
            await c.close()


def seen(latest: dict[str, Any], want: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {
        e: (latest[e]["total"]["voters"], latest[e]["total"]["sum"]) for e in want if e in latest
    }


def test_storm_small(server: Server, dash: Dashboard) -> None:
    storm(server.url, dash, lambda g, it: truth(server, g, it), n_clients=12, n_votes=10, n_items=3)


@pytest.mark.host
def test_storm_200_clients(tmp_path: Path) -> None:
    """200 clients x 50 votes against a server process; truth from `clickvote export`."""
    srv = ServerProcess(tmp_path)
    srv.start()
    exported: list[list[dict[str, Any]]] = []

    def export_truth(group_id: str, item: str) -> tuple[int, int]:
        if not exported:  # once, after the storm
            exported.append(votes_table(srv.export()))
        rows = [
            r["value"]
            for r in exported[0]
            if r["group_id"] == group_id and r["vote_to"] == item and r["value"] != 0
        ]
        return len(rows), sum(rows)

    try:
        storm(srv.url, Dashboard(srv.url), export_truth, n_clients=200, n_votes=50, n_items=20)
    finally:
        srv.stop()
