"""Many concurrent clients voting over several groups and items: exact totals afterwards,
and every client's last broadcast per item agrees with them."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import TIMEOUT, Client, Dashboard, Server, login, setup, truth
from .procserver import ServerProcess, votes_table

Truth = Callable[[str, str], tuple[int, int]]

GROUPS = {"h-stars": "range", "h-ups": "single"}


def storm(
    dash: Dashboard, clients: Any, the_truth: Truth, n_clients: int, n_votes: int, n_items: int
) -> None:
    items = [f"p{i}" for i in range(n_items)]
    pk = setup(dash, "h-stars", "range", start=1, end=5)
    setup(dash, "h-ups")
    conns: list[Client] = [clients() for _ in range(n_clients)]
    tokens = [login(c, pk) for c in conns]
    rng = random.Random(n_clients * 1000 + n_votes)
    users = [f"user{i}" for i in range(max(4, n_clients // 4))]  # shared: concurrent updates
    # each client is a page showing two (group, item) widgets, as in real use: rooms stay
    # small enough that 200 clients do not turn the test into a fan-out benchmark
    pages = [[(rng.choice(list(GROUPS)), rng.choice(items)) for _ in range(2)] for _ in conns]
    plans = [
        [(*rng.choice(pages[i]), rng.choice(users)) for _ in range(n_votes)]
        for i in range(n_clients)
    ]
    errors: list[Any] = []
    subscribed: list[set[tuple[str, str]]] = [set() for _ in conns]

    def run(i: int) -> None:
        vr = random.Random(i)
        try:
            for j, (group, item, user) in enumerate(plans[i]):
                value = vr.randrange(0, 6) if group == "h-stars" else vr.choice([-1, 0, 1])
                msg = {"id": group, "voteTo": item, "userId": user, "value": value}
                ack = conns[i].call("vote", {**msg, "token": tokens[i], "msgId": f"{i}-{j}"})
                if not ack.get("ok"):
                    errors.append(ack)
                subscribed[i].add((group, item))
        except Exception as exc:  # a lost call fails the test below, with its reason
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n_clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not any(th.is_alive() for th in threads), "voting threads did not finish"
    assert not errors, errors[:3]

    ids = {g["name"]: g["id"] for g in dash.get("/votes/?limit=100").json()["items"]}
    expected: dict[tuple[str, str], tuple[int, int]] = {}
    for group in GROUPS:
        for item in items:
            voters, total = the_truth(ids[group], item)
            expected[(group, item)] = (voters, total)
            st = conns[0].call("get-votes", {"id": group, "voteTo": item, "token": tokens[0]})
            assert st["ok"]
            assert (st["total"]["voters"], st["total"]["sum"]) == (voters, total), (group, item)

    # Every client's latest broadcast for every item it votes on matches the truth. Waiting is
    # bounded (events still in flight); the assertion is on values, not on time.
    for i, c in enumerate(conns):
        latest: dict[str, Any] = {}
        want = {f"get-votes-{g}-{it}": expected[(g, it)] for g, it in subscribed[i]}
        deadline = time.monotonic() + TIMEOUT
        while seen(latest, want) != want and time.monotonic() < deadline:
            try:
                name, data = c.events.get(timeout=0.2)
            except Exception:
                continue
            if name in want and isinstance(data, dict) and "total" in data:
                latest[name] = data
        got = seen(latest, want)
        assert got == want, f"client {i}: last broadcasts {got} != truth {want}"


def seen(latest: dict[str, Any], want: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {
        e: (latest[e]["total"]["voters"], latest[e]["total"]["sum"]) for e in want if e in latest
    }


def test_storm_small(server: Server, dash: Dashboard, clients: Any) -> None:
    storm(dash, clients, lambda g, it: truth(server, g, it), n_clients=12, n_votes=10, n_items=3)


@pytest.mark.host
def test_storm_200_clients(tmp_path: Path) -> None:
    """200 clients x 50 votes against a server process; truth from `clickvote export`."""
    srv = ServerProcess(tmp_path)
    srv.start()
    made: list[Client] = []

    def make() -> Client:
        c = Client(srv.url)
        made.append(c)
        return c

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
        storm(Dashboard(srv.url), make, export_truth, n_clients=200, n_votes=50, n_items=20)
    finally:
        for c in made:
            c.close()
        srv.stop()
