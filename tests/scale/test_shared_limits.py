"""Rate limits across instances: with Redis, two instances take from the same buckets; with
Redis gone, each limits on its own and votes still go through."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from services import PostgresServer, RedisServer, free_port, load_settings, start_uvicorn

from clickvote import ratelimit
from clickvote.app import create_app
from clickvote.ratelimit import WINDOW_REFUSED, SharedBuckets

from .conftest import TIMEOUT, Client, Dashboard, Instance, wait_until

LIMITS = {"rate_voter_burst": 5.0, "rate_voter_per_sec": 0.01}


@pytest.fixture
def limited(
    pg: PostgresServer, redis_server: RedisServer, tmp_path: Path
) -> Iterator[list[Instance]]:
    """Two instances on one database and one Redis, with a small per-voter limit."""
    db = pg.create_database()
    made = []
    for _ in range(2):
        port = free_port()
        settings = load_settings(
            port, tmp_path, database_url=db, redis_url=redis_server.url, **LIMITS
        )
        app = create_app(settings)
        srv, thread = start_uvicorn(app, port)
        made.append(Instance(f"http://127.0.0.1:{port}", app.api.state.ctx, srv, thread))
    try:
        yield made
    finally:
        for inst in made:
            inst.stop()


def votes(
    instances: list[Instance], clients: Callable[[str], Client], n: int, voter: str = "spam"
) -> list[dict]:
    """`n` votes by one voter on distinct items, alternating between the instances."""
    dash = Dashboard(instances[0].url)
    dash.group("likes")
    pk = dash.keys()["publicKey"]
    pages = [clients(inst.url) for inst in instances]
    tokens = [p.login(pk) for p in pages]
    out = []
    for i in range(n):
        page, token = pages[i % 2], tokens[i % 2]
        msg = {"id": "likes", "voteTo": f"i{i}", "userId": voter, "value": 1, "token": token}
        out.append(page.call("vote", msg))
    return out


def test_a_voters_limit_holds_across_instances(
    limited: list[Instance], clients: Callable[[str], Client]
) -> None:
    answers = votes(limited, clients, 12)
    accepted = [a for a in answers if a["ok"]]
    # one burst in all, not one per instance
    assert len(accepted) == LIMITS["rate_voter_burst"], answers
    refused = [a["error"] for a in answers if not a["ok"]]
    assert {e["code"] for e in refused} == {"rate_limited"}
    assert all(e["retryAfter"] > 1 for e in refused), refused
    assert all(inst.ctx.voter_limiter.shared._down_until == 0 for inst in limited)  # type: ignore[union-attr]


def test_http_429s_agree_across_instances(limited: list[Instance]) -> None:
    dash = Dashboard(limited[0].url)
    dash.group("likes")
    pk = dash.keys()["publicKey"]
    url = "{}/api/voter-token"
    headers = {"X-Forwarded-For": "203.0.113.90"}
    # 200 IP tokens (the test settings' burst is far larger): 5 per voter token on each
    for inst in limited:
        inst.ctx.ip_limiter.burst, inst.ctx.ip_limiter.rate = 10.0, 0.01
    codes = [
        requests.get(url.format(inst.url), params={"key": pk}, headers=headers, timeout=TIMEOUT)
        for inst in limited
        for _ in range(2)
    ]
    assert [r.status_code for r in codes] == [200, 200, 429, 429], [r.text for r in codes]
    assert int(codes[-1].headers["Retry-After"]) >= 1


def test_redis_gone_limits_per_instance_without_stalling(
    limited: list[Instance], redis_server: RedisServer, clients: Callable[[str], Client]
) -> None:
    redis_server.stop()
    started = time.monotonic()
    answers = votes(limited, clients, 12)
    took = time.monotonic() - started
    # each instance on its own buckets: one burst each
    assert sum(a["ok"] for a in answers) == 2 * LIMITS["rate_voter_burst"], answers
    assert took < TIMEOUT, took  # liveness: no vote waited out Redis timeouts one by one


def test_shared_again_once_redis_is_back(
    limited: list[Instance],
    redis_server: RedisServer,
    clients: Callable[[str], Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ratelimit, "SHARED_RETRY", 0.2)
    redis_server.stop()
    assert sum(a["ok"] for a in votes(limited, clients, 12)) == 2 * LIMITS["rate_voter_burst"]
    redis_server.start()

    def shared_again() -> bool:
        for inst in limited:  # any limited request lets the background check run
            params = {"key": "-", "id": "-", "voteTo": "-"}
            requests.get(inst.url + "/api/votes", params=params, timeout=TIMEOUT)
        return all(not inst.ctx.voter_limiter.shared._down_until for inst in limited)  # type: ignore[union-attr]

    wait_until(shared_again, what="rate limits shared through Redis again")
    assert sum(a["ok"] for a in votes(limited, clients, 12)) == LIMITS["rate_voter_burst"]


def test_any_key_string_is_shared(redis_server: RedisServer) -> None:
    """Keys that are not valid UTF-8 (a lone surrogate in a user id or email) are taken in
    Redis too, not mistaken for a Redis failure."""

    async def takes() -> list[float | None]:
        shared = SharedBuckets(redis_server.url)
        try:
            return [await shared.take("v|\ud800 not UTF-8", 1, 0.01, 1) for _ in range(2)]
        finally:
            await shared.close()

    first, second = asyncio.run(takes())
    assert first == 0.0 and second is not None and second > 50, (first, second)


def test_the_window_in_redis(redis_server: RedisServer) -> None:
    """The IP + user-agent window's script: at most `limit` voters, a known voter (any
    string) always again, the window's voters forgotten once it is over, and the key expiring
    with them; None once Redis is gone (the instance counts on its own)."""

    async def asks() -> None:
        shared = SharedBuckets(redis_server.url)
        try:
            odd = "voter \ud800"
            admitted = [await shared.admit_voter("k", v, 3600, 2) for v in (odd, "b", "c")]
            assert admitted == [True, True, False]
            assert await shared.admit_voter("k", odd, 3600, 2) is True
            ttl = await shared._redis.pttl(b"clickvote:rl:win:k")
            assert 0 < ttl <= 3_600_000
            assert [await shared.admit_voter("short", v, 0.2, 1) for v in "ab"] == [True, False]
            await asyncio.sleep(0.3)  # past the window (Redis' clock)
            assert not await shared._redis.exists(b"clickvote:rl:win:short")
            assert await shared.admit_voter("short", "b", 0.2, 1) is True
            redis_server.stop()
            assert await shared.admit_voter("k", "d", 3600, 2) is None
        finally:
            await shared.close()

    asyncio.run(asks())


def test_the_window_and_the_bucket_in_one_script(redis_server: RedisServer) -> None:
    """A vote's window and its voter's bucket in one Redis script: a voter the window refuses
    takes no token; None once Redis is gone."""

    async def asks() -> None:
        shared = SharedBuckets(redis_server.url)
        try:

            async def vote(voter: str) -> float | None:
                bucket = ("v|" + voter, 2.0, 0.001, 1.0)
                return await shared.admit_and_take(("k", voter, 3600, 1), bucket)

            assert await vote("a \ud800") == 0.0
            assert await vote("b") == WINDOW_REFUSED
            assert not await shared._redis.exists(b"clickvote:rl:v|b")  # no token taken
            assert await shared.take("v|b", 2.0, 0.001, 1.0) == 0.0  # its bucket is full
            assert await vote("a \ud800") == 0.0
            wait = await vote("a \ud800")
            assert wait is not None and wait > 50  # the third token of a burst of 2
            assert await shared._redis.zcard(b"clickvote:rl:win:k") == 1
            redis_server.stop()
            assert await vote("a \ud800") is None
        finally:
            await shared.close()

    asyncio.run(asks())
