"""Redis hung (SIGSTOP) or restarted under two instances: votes never wait on it, nothing
published is lost, caches are dropped on reconnect, every outage is logged."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from services import RedisServer

from clickvote import context

from .conftest import Client, Dashboard, Instance, run, wait_until
from .test_caches import until
from .test_cluster import vote_msg, wait_count, watch

Clients = Callable[[str], Client]
ACK_WITHIN = 1.5  # seconds: a vote whose acknowledgement waits out Redis' timeouts (2 s) fails


@contextlib.contextmanager
def paused(redis_server: RedisServer) -> Iterator[None]:
    assert redis_server.proc is not None
    pid = redis_server.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_hung_redis_never_stalls_a_vote(
    cluster: list[Instance], redis_server: RedisServer, clients: Clients
) -> None:
    one, two = cluster
    dash = Dashboard(one.url)
    dash.group("likes")
    pk = dash.keys()["publicKey"]
    remote = clients(two.url)
    watch(remote, pk, "r")
    voters = [clients(one.url) for _ in range(5)]
    tokens = [v.login(pk) for v in voters]
    acks: list[Any] = []
    with paused(redis_server):
        for round_ in range(2):  # the second round meets the first one's stuck publishes

            def cast(i: int, r: int = round_) -> None:
                msg = vote_msg(tokens[i], f"u{i}", 1 if r == 0 else -1)
                acks.append(voters[i].call("vote", msg, timeout=ACK_WITHIN))

            threads = [threading.Thread(target=cast, args=(i,)) for i in range(5)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(timeout=10)
    assert len(acks) == 10 and all(a["ok"] for a in acks), acks
    assert sorted(a["total"]["count"] for a in acks[5:]) == [-5, -3, -1, 1, 3]
    # live updates across instances resume by themselves once Redis answers again
    assert wait_count(remote, "get-votes-likes-p", -5, timeout=15)["total"]["count"] == -5
    for inst in cluster:
        wait_until(inst.fanout_ready, timeout=15, what="fan-out resumed")
    ack = voters[0].call("vote", vote_msg(tokens[0], "u0", 0))
    assert ack["ok"] and ack["total"]["count"] == -4
    assert wait_count(remote, "get-votes-likes-p", -4)["total"]["count"] == -4


def restart(redis_server: RedisServer, cluster: list[Instance]) -> None:
    redis_server.stop()
    for inst in cluster:
        wait_until(inst.fanout_down, what="outage noticed")
    redis_server.start()
    for inst in cluster:
        wait_until(inst.fanout_ready, timeout=15, what="fan-out resumed")


def test_nothing_published_is_lost_after_a_redis_restart(
    cluster: list[Instance],
    redis_server: RedisServer,
    clients: Clients,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(context, "CACHE_TTL", 3600.0)  # only notices can refresh a cache
    caplog.set_level(logging.WARNING, logger="clickvote.fanout")
    one, two = cluster
    dash = Dashboard(one.url)
    dash.group("likes")
    pk = dash.keys()["publicKey"]
    c = clients(two.url)
    token = c.login(pk)

    def code(tok: str) -> str:
        ack = c.call("vote", vote_msg(tok, "u", 1))
        return "ok" if ack["ok"] else str(ack["error"]["code"])

    def logged(word: str) -> int:
        return sum(word in r.getMessage() for r in caplog.records)

    assert code(token) == "ok"  # instance two has the environment cached
    for outage in (1, 2):
        restart(redis_server, cluster)
        assert logged("unavailable") == 2 * outage  # once per instance, every outage
        assert logged("restored") == 2 * outage
        # the first message after the restart (a key rotation) reaches instance two at once
        r = dash.http.post(f"{one.url}/settings/rotate", timeout=10)
        assert r.status_code == 200, r.text
        assert until(partial(code, token), lambda got: got != "ok", timeout=5) == "bad_token"
        token = c.login(r.json()["publicKey"])
        assert code(token) == "ok"
    assert logged("unavailable") == 4  # the stale connections were retried, not an outage


def test_a_reconnected_instance_drops_its_caches(
    cluster: list[Instance],
    redis_server: RedisServer,
    clients: Clients,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A notice sent while an instance was not subscribed is gone (here, the change is
    written by another process straight to the database): it re-reads after reconnecting."""
    monkeypatch.setattr(context, "CACHE_TTL", 3600.0)
    one, two = cluster
    dash = Dashboard(one.url)
    dash.group("likes")
    pk = dash.keys()["publicKey"]
    c = clients(two.url)
    token = c.login(pk)
    assert c.call("vote", vote_msg(token, "u", 1))["ok"]
    redis_server.stop()
    for inst in cluster:
        wait_until(inst.fanout_down, what="outage noticed")
    url = one.ctx.storage.url  # type: ignore[attr-defined]

    async def require_signed() -> None:
        from clickvote.storage.postgres import PostgresStorage  # libpq: on the host only

        other = PostgresStorage(url)
        await other.open()
        try:
            env = await other.get_env_by_public_key(pk)
            assert env is not None
            await other.set_env_identities(env.id, ("signed",))
        finally:
            await other.close()

    run(require_signed())
    assert c.call("vote", vote_msg(token, "u", 0))["ok"]  # cached: not seen yet
    redis_server.start()
    for inst in cluster:
        wait_until(inst.fanout_ready, timeout=15, what="fan-out resumed")
    ack = c.call("vote", vote_msg(token, "u", 1))
    assert not ack["ok"] and ack["error"]["code"] == "signature_required", ack
