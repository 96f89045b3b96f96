"""Per-socket limits of the real-time events: deep nesting, subscriptions, retry waits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from clickvote import ratelimit
from clickvote.ratelimit import RateLimiter, SharedBuckets, retry_after

from .conftest import Dashboard, Server, free_port, login, setup
from .test_fuzz_socket import Raw


@contextlib.contextmanager
def settings_of(server: Server, **changes: Any) -> Iterator[None]:
    saved = server.ctx.settings
    server.ctx.settings = replace(saved, **changes)
    try:
        yield
    finally:
        server.ctx.settings = saved


class FrozenClock(RateLimiter):
    """No refill between takes: the wait answered is exactly the one computed."""

    def take(
        self,
        key: str,
        cost: float = 1.0,
        now: float | None = None,
        burst: float | None = None,
        rate: float | None = None,
    ) -> float:
        return super().take(key, cost, 1000.0, burst=burst, rate=rate)


def test_deep_nesting_is_bad_payload_without_traceback(
    server: Server, dash: Dashboard, caplog: pytest.LogCaptureFixture
) -> None:
    pk = setup(dash, "deep")
    raw = Raw(server)
    nested = "[" * 1000 + "]" * 1000
    caplog.set_level(logging.WARNING)
    try:
        event = {"id": "deep", "voteTo": "x", "key": pk}
        raw.ws.send('421["get-votes",' + json.dumps(event)[:-1] + ',"n":' + nested + "}]")
        answer = raw.ack(1)
    finally:
        raw.close()
    assert answer is not None and answer["ok"] is False, answer
    assert answer["error"]["code"] == "bad_payload", answer
    assert not [r for r in caplog.records if r.exc_info], caplog.text


def test_subscriptions_per_socket_capped(server: Server, dash: Dashboard, clients: Any) -> None:
    pk = setup(dash, "subs")
    c = clients()
    t = login(c, pk)

    def watch(item: str) -> Any:
        return c.call("get-votes", {"id": "subs", "voteTo": item, "userId": "w", "token": t})

    with settings_of(server, max_subscriptions=3):
        answers = [watch(f"i{n}") for n in range(5)]
        again = watch("i1")  # an item already watched is no new subscription
    assert [a["ok"] for a in answers] == [True, True, True, False, False], answers
    err = answers[3]["error"]
    assert err["code"] == "too_many_subscriptions" and "at most 3" in err["message"], err
    assert again["ok"], again
    other = clients()  # the cap is per socket
    t2 = login(other, pk)
    with settings_of(server, max_subscriptions=3):
        ok = other.call("get-votes", {"id": "subs", "voteTo": "i4", "token": t2})
    assert ok["ok"], ok


def test_retry_after_never_zero_and_never_short(
    server: Server, dash: Dashboard, clients: Any
) -> None:
    pk = setup(dash, "wait")
    c = clients()
    t = login(c, pk)
    saved = server.ctx.voter_limiter
    # a wait of about a microsecond: rounded to 3 decimals it would read 0
    server.ctx.voter_limiter = FrozenClock(burst=1, per_second=1_000_000)
    try:
        msg = {"id": "wait", "voteTo": "x", "userId": "v", "value": 1, "token": t}
        first, second = c.call("vote", msg), c.call("vote", {**msg, "voteTo": "y"})
    finally:
        server.ctx.voter_limiter = saved
    assert first["ok"], first
    err = second["error"]
    assert err["code"] == "rate_limited", err
    assert err["retryAfter"] >= 0.001  # never 0, and >= the real wait (1e-6 s)
    # a wait of 1.0004 s answers 1.001, not 1.0
    slow = FrozenClock(burst=1, per_second=1 / 1.0004)
    slow.take("k")
    assert retry_after(slow.take("k")) == 1.001


def test_msg_id_on_another_item_is_a_new_vote(dash: Dashboard, clients: Any) -> None:
    pk = setup(dash, "msgs")
    c = clients()
    t = login(c, pk)
    msg = {"id": "msgs", "userId": "v", "value": 1, "token": t, "msgId": "one-id"}
    a, b = c.call("vote", {**msg, "voteTo": "a"}), c.call("vote", {**msg, "voteTo": "b"})
    assert a["ok"] and b["ok"] and not b["replayed"], (a, b)
    for item in ("a", "b"):
        state = c.call("get-votes", {"id": "msgs", "voteTo": item, "userId": "v", "token": t})
        assert state["total"]["count"] == 1 and state["voteValue"] == 1, (item, state)


@pytest.mark.parametrize("redis", ["refused", "silent"])
def test_shared_buckets_fall_back_to_local_ones(
    redis: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis unreachable or hung: limits are decided locally, logged once, and after the
    first failure no request goes to Redis (whether it is back is asked in the background,
    one check at a time, here as often as possible)."""
    monkeypatch.setattr(ratelimit, "SHARED_RETRY", 0.0)
    accepted: list[asyncio.StreamWriter] = []

    async def takes() -> list[float]:
        port = free_port()  # nothing listens there
        if redis == "silent":  # accepts connections and never answers
            server = await asyncio.start_server(lambda _r, w: accepted.append(w), "127.0.0.1", port)
        shared = SharedBuckets(f"redis://127.0.0.1:{port}/0")
        limiter = RateLimiter(burst=2, per_second=0.01, shared=shared)
        try:
            return [await limiter.acquire("v|x") for _ in range(6)]
        finally:
            await shared.close()
            if redis == "silent":
                server.close()

    caplog.set_level(logging.WARNING, "clickvote.ratelimit")
    waits = asyncio.run(asyncio.wait_for(takes(), 10))
    assert waits[:2] == [0.0, 0.0] and all(w > 50 for w in waits[2:]), waits
    assert len([r for r in caplog.records if "Redis failed" in r.getMessage()]) == 1
    assert len(accepted) <= (2 if redis == "silent" else 0)  # the failed take, one check
