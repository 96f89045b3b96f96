"""Limits hold for the whole server, not per worker: at `--workers 2` the per-address token
bucket and the Engine.IO sessions per address refuse at the same count as at `--workers 1`
(each request on a connection of its own, so the kernel spreads them over the workers), and
the IP + user-agent window counts one client's voters on both workers together."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from app.conftest import Dashboard, setup

from .conftest import wait_until
from .workerserver import TIMEOUT, SioWatcher, WorkersServer, on_each_worker

BURST = 5
SESSIONS = 4
TRIES = 40  # requests, each on a new connection


@pytest.fixture(params=[1, 2])
def limited(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkersServer]:
    srv = WorkersServer(
        tmp_path,
        request.param,
        CLICKVOTE_RATE_IP_BURST=str(BURST),
        CLICKVOTE_RATE_IP_PER_SEC="0.001",
        CLICKVOTE_MAX_SESSIONS_PER_IP=str(SESSIONS),
    )
    if request.param == 1:
        srv.count = 0  # one process, no workers
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def fresh_get(url: str) -> requests.Response:
    with requests.Session() as s:  # a connection of its own
        return s.get(url, timeout=TIMEOUT)


def test_the_per_address_bucket_refuses_at_the_same_count(limited: WorkersServer) -> None:
    pk = setup(Dashboard(limited.url))
    url = f"{limited.url}/public/v1/counts?key={pk}&group=likes&item=p"
    codes = [fresh_get(url).status_code for _ in range(TRIES)]
    assert codes == [200] * BURST + [429] * (TRIES - BURST)


def test_sessions_per_address_are_refused_at_the_same_count(limited: WorkersServer) -> None:
    url = f"{limited.url}/socket.io/?EIO=4&transport=polling"
    codes = [fresh_get(url).status_code for _ in range(TRIES)]
    assert codes == [200] * SESSIONS + [429] * (TRIES - SESSIONS)


CAP = 6


def opened(port: int, conns: list[socket.socket]) -> bool:
    """Open one more idle connection; whether the server kept it (a refused one gets 503 and
    is closed at once)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    conns.append(s)
    s.settimeout(0.5)  # a liveness bound: a refusal is written as the connection is accepted
    try:
        return not s.recv(64).startswith(b"HTTP/1.1 503")
    except TimeoutError:
        return True


@pytest.mark.parametrize("workers", [1, 2])
def test_the_connection_cap_counts_every_workers_connections(tmp_path: Path, workers: int) -> None:
    srv = WorkersServer(tmp_path, workers, CLICKVOTE_MAX_CONNECTIONS=str(CAP))
    if workers == 1:
        srv.count = 0
    conns: list[socket.socket] = []
    try:
        srv.start()
        kept = [opened(srv.port, conns) for _ in range(CAP + 4)]
        assert kept == [True] * CAP + [False] * 4
    finally:
        for s in conns:
            s.close()
        srv.stop()


IP_VOTERS = 2


def vote(page: SioWatcher, pk: str, voter: str, item: str = "p") -> str | None:
    """The error code of `voter`'s vote on `item` (None: counted)."""
    msg = {"id": "likes", "voteTo": item, "userId": voter, "value": 1, "key": pk}
    answer: dict[str, Any] = page.call("vote", msg)
    return None if answer["ok"] else str(answer["error"]["code"])


def window_set(page: SioWatcher, pk: str, item: str) -> bool:
    """Whether `page`'s worker refuses one voter over IP_VOTERS on `item` (it has the
    environment's new setting: the other worker hears of it through the hub)."""
    codes = [vote(page, pk, f"probe{i}", item) for i in range(IP_VOTERS + 1)]
    return codes[-1] == "too_many_voters"


def test_the_ip_window_counts_the_voters_of_every_worker(tmp_path: Path) -> None:
    """One address and user agent votes as voters 1..5, each on a new connection, the
    connections alternating between the workers: two are counted in all, not two per worker,
    and those two vote again wherever they land."""
    srv = WorkersServer(tmp_path, 2)
    made: list[SioWatcher] = []

    def open_one() -> tuple[SioWatcher, str]:
        made.append(SioWatcher(srv.url, ["websocket"]))
        return made[-1], made[-1].sid

    try:
        srv.start()
        dash = Dashboard(srv.url)
        pk = setup(dash)
        assert dash.put("/settings/", {"ipVoters": IP_VOTERS}).status_code == 200
        pages = [page for _ in range(3) for page in on_each_worker(open_one)]  # 0, 1, 0, ...
        for w in (0, 1):
            wait_until(lambda w=w: window_set(pages[w], pk, f"probe-{w}"), what=f"worker {w}")
        codes = [vote(pages[i], pk, f"voter{i + 1}") for i in range(5)]
        assert codes == [None] * IP_VOTERS + ["too_many_voters"] * 3
        assert vote(pages[3], pk, "voter1") is None  # worker 1 now: counted, votes again
        assert vote(pages[4], pk, "voter2") is None  # worker 0 now
        assert vote(pages[5], pk, "voter3") == "too_many_voters"
    finally:
        for page in made:
            page.close()
        srv.stop()
