"""Limits hold for the whole server, not per worker: at `--workers 2` the per-address token
bucket and the Engine.IO sessions per address refuse at the same count as at `--workers 1`
(each request on a connection of its own, so the kernel spreads them over the workers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from app.conftest import Dashboard, setup

from .workerserver import TIMEOUT, WorkersServer

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
