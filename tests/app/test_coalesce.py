"""Coalesced item broadcasts (clickvote/coalesce.py): a hot item's watchers get at most one
totals update per window, ending on the stored truth; window 0 sends one per vote; a watcher
that reads nothing has the newest totals waiting, not every one (clickvote.engineio.Shared)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hotitem import EVENT, GROUP, ITEM, check_coalesced, storm
from services import free_port, load_settings, start_uvicorn

from clickvote.app import create_app
from clickvote.client import SioClient

from .conftest import TIMEOUT, Dashboard, Server

MakeServer = Callable[..., Server]


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[MakeServer]:
    stops = []

    def make(window: float, **settings: Any) -> Server:
        port = free_port()
        data_dir = tmp_path / f"w{len(stops)}"
        app = create_app(load_settings(port, data_dir, broadcast_window=window, **settings))
        srv, thread = start_uvicorn(app, port)
        stops.append((srv, thread))
        server = Server(f"http://127.0.0.1:{port}", app.api.state.ctx, data_dir)
        server.sio = app.sio  # type: ignore[attr-defined]
        return server

    yield make
    for srv, thread in stops:
        srv.should_exit = True
        thread.join(timeout=10)


def stored_count(server: Server, pk: str) -> int:
    rows = server.ctx.storage.run_sync(  # type: ignore[attr-defined]
        lambda tx: tx.all("SELECT value FROM votes WHERE vote_to = ?", ITEM), False
    )
    return sum(r[0] for r in rows)


def test_200_voters_on_one_item_watchers_get_few_frames_ending_on_truth(
    make_server: MakeServer,
) -> None:
    window, n = 1.0, 200  # a long window: far fewer frames than votes even under emulation
    server = make_server(window)
    dash = Dashboard(server.url)
    dash.group(GROUP)
    pk = dash.keys()["publicKey"]
    url = [server.url]
    result = asyncio.run(storm(pk, url, url * 5, n, n, timeout=max(TIMEOUT, 60.0)))
    assert stored_count(server, pk) == n
    check_coalesced(result, n, window)


def test_window_0_sends_one_update_per_vote(make_server: MakeServer) -> None:
    n = 30
    server = make_server(0)
    dash = Dashboard(server.url)
    dash.group(GROUP)
    pk = dash.keys()["publicKey"]
    url = [server.url]
    result = asyncio.run(storm(pk, url, url * 3, n, n, timeout=TIMEOUT))
    assert sorted(result.acks) == list(range(1, n + 1))
    for frames in result.frames:
        assert frames == list(range(1, n + 1))


SEP = "\x1e"


def polling_watcher(server: Server, pk: str) -> tuple[str, str]:
    """A long-polling socket that watches the item: (its engine.io sid, its polling URL)."""
    r = requests.get(f"{server.url}/socket.io/?EIO=4&transport=polling", timeout=TIMEOUT)
    sid = json.loads(r.text[1:])["sid"]
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    watch = json.dumps(["get-votes", {"id": GROUP, "voteTo": ITEM, "key": pk}])
    assert requests.post(url, data=f"40{SEP}421{watch}", timeout=TIMEOUT).text == "ok"
    got: list[str] = []
    while not any(p.startswith("431") for p in got):  # its CONNECT, the state, the ack
        got += requests.get(url, timeout=TIMEOUT).text.split(SEP)
    return sid, url


async def vote_many(url: str, pk: str, voters: int, each: int) -> list[int]:
    """`voters` sockets, each casting `each` votes (a new user each) one after the other:
    the counts their acknowledgements carried."""
    counts: list[int] = []

    async def one(i: int) -> None:
        c = SioClient(url)
        await c.connect(auth={"token": pk}, timeout=TIMEOUT)
        try:
            for j in range(each):
                msg = {"id": GROUP, "voteTo": ITEM, "key": pk, "userId": f"v{i}-{j}", "value": 1}
                ack = await c.call("vote", msg, TIMEOUT)  # a bounded wait: never held back
                assert ack["ok"], ack
                counts.append(int(ack["total"]["count"]))
        finally:
            await c.close()

    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(voters))), 4 * TIMEOUT)
    return counts


def test_a_watcher_that_reads_nothing_keeps_the_newest_totals_not_a_queue(
    make_server: MakeServer,
) -> None:
    """300 votes on the item of a long-polling watcher that does not poll: it keeps only the
    newest totals waiting (not 300 updates, not closed at a queue of 100), the voters' acks
    come all the same, and its next poll ends on the stored count."""
    n = 300
    server = make_server(0, max_socket_queue=100)  # window 0: one update per vote
    dash = Dashboard(server.url)
    dash.group(GROUP)
    pk = dash.keys()["publicKey"]
    sid, url = polling_watcher(server, pk)
    counts = asyncio.run(vote_many(server.url, pk, 5, n // 5))
    assert sorted(counts) == list(range(1, n + 1))
    session = server.sio.engine.sessions.get(sid)  # type: ignore[attr-defined]
    assert session is not None and not session.closed, "the watcher was closed"
    assert len(session.outbox) <= 3, [p if isinstance(p, str) else p.text for p in session.outbox]
    packets = requests.get(url, timeout=TIMEOUT).text.split(SEP)
    updates = [json.loads(p[2:]) for p in packets if p.startswith(f'42["{EVENT}"')]
    assert updates and updates[-1][1]["total"]["count"] == n == stored_count(server, pk)
