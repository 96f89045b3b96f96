"""Webhooks on SQLite and PostgreSQL against a real receiver on 127.0.0.1: a receiver that is
down (port closed, then a 500, then an answer later than the timeout) and then up gets every
vote's event; a server restarted between a vote and its delivery still delivers it (the
outbox); two instances on one PostgreSQL database lose none and send none twice."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from receiver import Receiver
from services import PostgresServer

from .conftest import TIMEOUT, Client, Dashboard, Instance, start_instance, wait_until

SECRET = "whsec-scale-0123456789"
Clients = Callable[[str], Client]


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'clickvote.db'}"
    pg: PostgresServer = request.getfixturevalue("pg")
    return pg.create_database()


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[list[Instance]]:
    made: list[Instance] = []
    yield made
    for inst in made:
        inst.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()  # not started: its port refuses connections
    yield r
    r.stop()


def setup(url: str, receiver: Receiver) -> tuple[Dashboard, str]:
    dash = Dashboard(url)
    dash.group("likes")
    r = dash.http.put(
        f"{url}/settings/webhook", json={"url": receiver.url, "secret": SECRET}, timeout=TIMEOUT
    )
    assert r.status_code == 200, r.text
    return dash, str(dash.keys()["publicKey"])


def vote(c: Client, pk: str, item: str, user: str = "ann") -> None:
    token = c.login(pk)
    ack = c.call(
        "vote", {"id": "likes", "voteTo": item, "userId": user, "value": 1, "token": token}
    )
    assert ack["voted"], ack


def log(dash: Dashboard) -> dict[str, Any]:
    r = dash.http.get(f"{dash.url}/settings/webhook/deliveries?limit=100", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return dict(r.json())


def errors(dash: Dashboard) -> list[str]:
    return [str(d["error"]) for d in log(dash)["deliveries"]]


def delivered(receiver: Receiver, items: set[str]) -> Callable[[], bool]:
    return lambda: {e["item"] for e in receiver.events(SECRET) if e["type"] == "vote"} >= items


def test_down_failing_hanging_then_up_loses_nothing(
    database: str, tmp_path: Path, instances: list[Instance], receiver: Receiver, clients: Clients
) -> None:
    inst = start_instance(tmp_path, database, "")
    instances.append(inst)
    dash, pk = setup(inst.url, receiver)
    items = {f"post-{i}" for i in range(5)}
    c = clients(inst.url)
    for item in sorted(items):
        vote(c, pk, item)
    wait_until(lambda: any("connect failed" in e for e in errors(dash)), what="refused connects")
    assert log(dash)["pending"] == 5  # every vote acknowledged, every event waiting
    receiver.mode = "fail"
    receiver.start()
    wait_until(lambda: any(e == "HTTP 500" for e in errors(dash)), what="a 500")
    receiver.mode, receiver.hang = "hang", 1.5  # past the server's 1 s
    wait_until(lambda: any("no answer within" in e for e in errors(dash)), what="a timeout")
    receiver.mode = "ok"
    wait_until(delivered(receiver, items), timeout=30, what="every event")
    wait_until(lambda: log(dash)["pending"] == 0, what="an empty outbox")
    events = [e for e in receiver.events(SECRET) if e["type"] == "vote"]
    by_item: dict[str, set[str]] = {}
    for e in events:
        by_item.setdefault(e["item"], set()).add(e["id"])
    assert set(by_item) == items and all(len(ids) == 1 for ids in by_item.values()), by_item
    assert len({e["id"] for e in events}) == 5  # retries repeat an id, never make a new one
    assert all(e["totals"]["count"] == 1 for e in events)


def test_restart_between_vote_and_delivery_delivers(
    database: str, tmp_path: Path, instances: list[Instance], receiver: Receiver, clients: Clients
) -> None:
    first = start_instance(tmp_path, database, "")
    instances.append(first)
    dash, pk = setup(first.url, receiver)
    c = clients(first.url)
    items = {"a", "b", "c"}
    for item in sorted(items):
        vote(c, pk, item)
    wait_until(lambda: len(errors(dash)) >= 3, what="failed attempts")
    first.stop()
    receiver.start()
    time.sleep(0.3)  # the stopped instance sends nothing more
    assert not receiver.received
    second = start_instance(tmp_path, database, "")
    instances.append(second)
    wait_until(delivered(receiver, items), timeout=30, what="the events after the restart")
    ids = {e["id"] for e in receiver.events(SECRET)}
    assert len(ids) == 3


def test_two_instances_on_one_postgres_lose_and_repeat_nothing(
    pg: PostgresServer,
    tmp_path: Path,
    instances: list[Instance],
    receiver: Receiver,
    clients: Clients,
) -> None:
    database = pg.create_database()
    instances.extend(start_instance(tmp_path, database, "") for _ in range(2))
    receiver.start()
    dash, pk = setup(instances[0].url, receiver)
    voters = [clients(inst.url) for inst in instances]
    items = {f"item-{i}" for i in range(30)}
    for i, item in enumerate(sorted(items)):
        vote(voters[i % 2], pk, item, user=f"v{i}")
    wait_until(delivered(receiver, items), timeout=30, what="every event")
    wait_until(lambda: log(dash)["pending"] == 0, what="an empty outbox")
    ids = [e["id"] for e in receiver.events(SECRET)]
    assert len(ids) == len(set(ids)) == 30  # a healthy receiver: each event sent once


def test_outbox_bound_drops_the_oldest_keeps_the_votes(
    database: str, tmp_path: Path, instances: list[Instance], receiver: Receiver, clients: Clients
) -> None:
    # retries a second apart: the log's newest 100 entries still hold the discards
    inst = start_instance(tmp_path, database, "", webhook_backoff=1.0, webhook_backoff_max=1.0)
    instances.append(inst)
    dash, pk = setup(inst.url, receiver)
    r = dash.http.put(
        f"{inst.url}/settings/webhook", json={"url": receiver.url, "maxPending": 4}, timeout=TIMEOUT
    )
    assert r.status_code == 200 and r.json()["maxPending"] == 4, r.text
    items = [f"post-{i:02}" for i in range(12)]
    c = clients(inst.url)
    for item in items:
        vote(c, pk, item)
        time.sleep(0.002)  # event ids are time-ordered: one millisecond apart at least
    wait_until(lambda: log(dash)["pending"] == 4, what="the outbox at its bound")
    drops = [d for d in log(dash)["deliveries"] if d["type"] == "discarded"]
    assert drops and sum(d["dropped"] for d in drops) == 8, drops
    for item in items:  # every vote stored and counted
        got = dash.http.get(
            f"{inst.url}/public/v1/counts",
            params={"key": pk, "group": "likes", "item": item},
            timeout=TIMEOUT,
        )
        assert got.json()["total"]["count"] == 1, got.text
    receiver.start()
    wait_until(delivered(receiver, set(items[-4:])), timeout=30, what="the events kept")
    wait_until(lambda: log(dash)["pending"] == 0, what="an empty outbox")
    assert {e["item"] for e in receiver.events(SECRET)} == set(items[-4:])
