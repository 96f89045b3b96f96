"""Coalesced item broadcasts (clickvote/coalesce.py): a hot item's watchers get at most one
totals update per window, ending on the stored truth; window 0 sends one per vote."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hotitem import GROUP, ITEM, check_coalesced, storm
from services import free_port, load_settings, start_uvicorn

from clickvote.app import create_app

from .conftest import TIMEOUT, Dashboard, Server

MakeServer = Callable[[float], Server]


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[MakeServer]:
    stops = []

    def make(window: float) -> Server:
        port = free_port()
        data_dir = tmp_path / f"w{len(stops)}"
        app = create_app(load_settings(port, data_dir, broadcast_window=window))
        srv, thread = start_uvicorn(app, port)
        stops.append((srv, thread))
        return Server(f"http://127.0.0.1:{port}", app.api.state.ctx, data_dir)

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
