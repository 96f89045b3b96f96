"""The real-time path caches environments and groups; dashboard changes made through one
instance take effect at once on the others (the notice goes through the fan-out)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from clickvote import context

from .conftest import Client, Dashboard, Instance

Clients = Callable[[str], Client]


def until(fn: Callable[[], Any], want: Callable[[Any], bool], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if want(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_dashboard_changes_reach_every_instance(
    cluster: list[Instance], clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context, "CACHE_TTL", 3600.0)  # only the notices can refresh
    one, two = cluster
    dash = Dashboard(one.url)
    group = dash.group("likes")
    pk = dash.keys()["publicKey"]
    c = clients(two.url)
    token = c.login(pk)

    def vote(tok: str) -> dict[str, Any]:
        msg = {"id": "likes", "voteTo": "p", "userId": "u", "value": 1, "token": tok}
        return dict(c.call("vote", msg))

    def code(ack: dict[str, Any]) -> str:
        return "ok" if ack.get("ok") else str(ack["error"]["code"])

    assert vote(token)["ok"]  # instance two has the environment and the group cached now
    r = dash.http.put(f"{one.url}/settings/", json={"requireSigned": True}, timeout=10)
    assert r.status_code == 200, r.text
    assert code(until(lambda: vote(token), lambda a: not a["ok"])) == "signature_required"
    r = dash.http.put(f"{one.url}/settings/", json={"requireSigned": False}, timeout=10)
    assert r.status_code == 200, r.text
    assert code(until(lambda: vote(token), lambda a: a["ok"])) == "ok"
    # a rotated key invalidates the login tokens of the old one, on every instance
    r = dash.http.post(f"{one.url}/settings/rotate", timeout=10)
    assert r.status_code == 200, r.text
    assert code(until(lambda: vote(token), lambda a: not a["ok"])) == "bad_token"
    token = c.login(r.json()["publicKey"])
    assert vote(token)["ok"]
    # a deleted group is gone everywhere
    r = dash.http.delete(f"{one.url}/votes/{group['_id']}", timeout=10)
    assert r.status_code == 200, r.text
    assert code(until(lambda: vote(token), lambda a: not a["ok"])) == "unknown_group"
