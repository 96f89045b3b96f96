"""`clickvote serve --workers 2`: one listening socket, two worker processes, a hub between
them. Live updates cross workers, totals stay exact on SQLite and PostgreSQL, a killed worker
is replaced, and a stop ends every process."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app.conftest import Dashboard, setup
from hardening.procserver import votes_table
from hardening.test_concurrency import storm
from services import PostgresServer

from clickvote.client import SioClient

from .workerserver import TIMEOUT, SioWatcher, WorkersServer, on_each_worker, worker_of

VOTERS = 40  # concurrent voters on one item


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return ""
    pg: PostgresServer = request.getfixturevalue("pg")
    return pg.create_database()


@pytest.fixture
def two(tmp_path: Path, backend: str) -> Iterator[WorkersServer]:
    srv = WorkersServer(tmp_path, 2, backend, CLICKVOTE_LOG_LEVEL="warning")
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def watchers() -> Iterator[list[SioWatcher]]:
    made: list[SioWatcher] = []
    yield made
    for w in made:
        w.close()


def watcher_on_each(url: str, made: list[SioWatcher], transports: list[str]) -> list[SioWatcher]:
    def open_one() -> tuple[SioWatcher, str]:
        made.append(SioWatcher(url, transports))
        return made[-1], made[-1].sid

    return on_each_worker(open_one)


@pytest.mark.parametrize("transports", ["polling", "websocket", "polling,websocket"])
def test_a_vote_on_one_worker_reaches_pages_on_the_other(
    two: WorkersServer, watchers: list[SioWatcher], transports: str
) -> None:
    """Polling only (its GETs and POSTs land on either worker), WebSocket only, and polling
    upgraded to a WebSocket (the upgrade may land on the other worker too)."""
    pk = setup(Dashboard(two.url))
    first, second = watcher_on_each(two.url, watchers, transports.split(","))
    tokens = [str(w.call("login", {"apiKey": pk})["token"]) for w in (first, second)]
    for w, token, user in ((first, tokens[0], "ann"), (second, tokens[1], "bob")):
        w.call("get-votes", {"id": "likes", "voteTo": "p", "userId": user, "token": token})
    msg = {"id": "likes", "voteTo": "p", "userId": "ann", "value": 1, "token": tokens[0]}
    assert first.call("vote", msg)["ok"]
    assert second.wait_count("get-votes-likes-p", 1)["total"]["count"] == 1
    msg = {**msg, "userId": "bob", "token": tokens[1]}
    assert second.call("vote", msg)["ok"]
    assert first.wait_count("get-votes-likes-p", 2)["total"]["count"] == 2


async def _one_item(url: str, pk: str) -> list[dict[str, Any]]:
    """VOTERS voters at once on one item, each on a connection of its own (both workers
    take some), each voting up, then every other one down: each one's state afterwards."""
    conns = [SioClient(url) for _ in range(VOTERS)]
    try:
        await asyncio.gather(*(c.connect(timeout=TIMEOUT) for c in conns))
        tokens = [
            str((await c.call("login", {"apiKey": pk}, timeout=TIMEOUT))["token"]) for c in conns
        ]

        def vote(i: int, value: int) -> Any:
            msg = {"id": "likes", "voteTo": "p", "userId": f"v{i}", "value": value}
            return conns[i].call("vote", {**msg, "token": tokens[i]}, timeout=TIMEOUT)

        acks = await asyncio.gather(*(vote(i, 1) for i in range(VOTERS)))
        acks += await asyncio.gather(*(vote(i, -1) for i in range(0, VOTERS, 2)))
        assert all(a["ok"] for a in acks), [a for a in acks if not a["ok"]][:3]
        states = []
        for i, c in enumerate(conns):
            msg = {"id": "likes", "voteTo": "p", "userId": f"v{i}", "token": tokens[i]}
            states.append(await c.call("get-votes", msg, timeout=TIMEOUT))
        return states
    finally:
        for c in conns:
            await c.close()


def test_totals_stay_exact_with_voters_on_both_workers(two: WorkersServer) -> None:
    pk = setup(Dashboard(two.url))
    states = asyncio.run(_one_item(two.url, pk))
    ups, downs = VOTERS // 2, VOTERS // 2
    for i, state in enumerate(states):
        assert state["voted"] is True
        assert state["voteValue"] == (-1 if i % 2 == 0 else 1), (i, state)
        assert (state["total"]["voters"], state["total"]["sum"]) == (VOTERS, ups - downs)
    if not two.env.get("CLICKVOTE_DATABASE_URL"):  # SQLite: the stored rows, from an export
        rows = [r for r in votes_table(two.export()) if r["vote_to"] == "p"]
        assert sorted(r["value"] for r in rows) == [-1] * downs + [1] * ups


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_storm_across_two_workers(two: WorkersServer) -> None:
    """The concurrency suite's storm (double clicks counted once, every page ending on the
    truth) with its pages spread over both workers."""
    exported: list[list[dict[str, Any]]] = []

    def export_truth(group_id: str, item: str) -> tuple[int, int]:
        if not exported:
            exported.append(votes_table(two.export()))
        rows = [
            r["value"]
            for r in exported[0]
            if r["group_id"] == group_id and r["vote_to"] == item and r["value"] != 0
        ]
        return len(rows), sum(rows)

    storm(two.url, Dashboard(two.url), export_truth, n_clients=30, n_votes=10, n_items=3)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_killed_worker_is_replaced(two: WorkersServer, watchers: list[SioWatcher]) -> None:
    pk = setup(Dashboard(two.url))
    first, second = watcher_on_each(two.url, watchers, ["websocket"])
    victim = worker_of(first.sid)
    pid = two.worker_pid(victim)
    os.kill(pid, signal.SIGKILL)
    assert pid not in two.wait_workers(gone=(pid,))
    token = str(second.call("login", {"apiKey": pk})["token"])
    second.call("get-votes", {"id": "likes", "voteTo": "p", "userId": "bob", "token": token})
    fresh = watcher_on_each(two.url, watchers, ["websocket"])[victim]
    token = str(fresh.call("login", {"apiKey": pk})["token"])
    msg = {"id": "likes", "voteTo": "p", "userId": "ann", "value": 1, "token": token}
    assert fresh.call("vote", msg)["ok"]  # on the new worker, seen on the other one
    assert second.wait_count("get-votes-likes-p", 1)["total"]["count"] == 1


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_every_process(two: WorkersServer, sig: int) -> None:
    pids = two.workers()
    assert two.proc is not None
    two.proc.send_signal(sig)
    assert two.proc.wait(TIMEOUT) == 0
    assert [pid for pid in pids if Path(f"/proc/{pid}").exists()] == []


def test_one_worker_is_one_process(tmp_path: Path) -> None:
    srv = WorkersServer(tmp_path, 1)
    srv.count = 0  # no worker processes: the server itself serves
    try:
        srv.start()
        assert srv.workers() == []
    finally:
        srv.stop()
