"""Coalesced item broadcasts across two instances on one PostgreSQL and one Redis: watchers on
both end on the stored truth, only moving forward, with at most one update per window."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import requests
from hotitem import GROUP, ITEM, check_coalesced, storm
from services import PostgresServer, RedisServer

from .conftest import TIMEOUT, Dashboard, start_instance, wait_until

WINDOW = 0.25


@pytest.mark.host
def test_hot_item_across_two_instances_on_redis(
    pg: PostgresServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    db = pg.create_database()
    one, two = (
        start_instance(tmp_path, db, redis_server.url, broadcast_window=WINDOW) for _ in range(2)
    )
    try:
        for inst in (one, two):
            wait_until(inst.fanout_ready, what="Redis fan-out subscribed")
        dash = Dashboard(one.url)
        dash.group(GROUP)
        pk = dash.keys()["publicKey"]
        n = 200
        urls = [one.url, two.url]
        result = asyncio.run(storm(pk, urls, urls * 3, n, n, timeout=max(TIMEOUT, 60.0)))
        for url in urls:
            r = requests.get(
                f"{url}/api/votes", params={"key": pk, "id": GROUP, "voteTo": ITEM}, timeout=TIMEOUT
            )
            assert r.json()["total"]["count"] == n, r.text
        check_coalesced(result, n, WINDOW)
    finally:
        one.stop()
        two.stop()
