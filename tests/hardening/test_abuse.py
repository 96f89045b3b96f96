"""Floods are rate-limited with a clear error without hurting other voters or IPs; forged
login tokens, signatures and voter tokens are rejected.

Distinct client IPs come from X-Forwarded-For, which uvicorn trusts from 127.0.0.1 (its
default forwarded_allow_ips), exactly as behind a local reverse proxy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from clickvote.ratelimit import RateLimiter
from clickvote.security import sign_user_id

from .conftest import TIMEOUT, Client, Dashboard, Server, login, setup


@pytest.fixture
def proxied(server: Server) -> Iterator[Any]:
    made: list[Client] = []

    def make(ip: str) -> Client:
        c = Client(server.url, headers={"X-Forwarded-For": ip})
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def vote(c: Client, token: str, user: str, item: str = "f") -> dict[str, Any]:
    msg = {"id": "flood", "voteTo": item, "userId": user, "value": 1, "token": token}
    return dict(c.call("vote", msg))


def test_ip_flood_limited_other_ips_unaffected(server: Server, dash: Dashboard, proxied) -> None:
    pk = setup(dash, "flood")
    flooder, other = proxied("203.0.113.7"), proxied("198.51.100.9")
    tf, to = login(flooder, pk), login(other, pk)
    saved = server.ctx.ip_limiter
    server.ctx.ip_limiter = RateLimiter(burst=5, per_second=0.01)
    try:
        flood = [vote(flooder, tf, f"f{i}") for i in range(12)]
        calm = [vote(other, to, f"o{i}") for i in range(3)]
    finally:
        server.ctx.ip_limiter = saved
    assert [r["ok"] for r in flood] == [True] * 5 + [False] * 7
    for r in flood[5:]:
        err = r["error"]
        assert err["code"] == "rate_limited" and err["retryAfter"] > 0
        assert "slow down" in err["message"] and err["event"] == "vote"
    assert flooder.wait("clickvote:error")["code"] == "rate_limited"  # also as an event
    assert all(r["ok"] for r in calm), calm


def test_voter_flood_limited_across_connections_and_ips(
    server: Server, dash: Dashboard, proxied
) -> None:
    pk = setup(dash, "flood")
    a, b = proxied("203.0.113.20"), proxied("203.0.113.21")
    ta, tb = login(a, pk), login(b, pk)
    saved = server.ctx.voter_limiter
    server.ctx.voter_limiter = RateLimiter(burst=3, per_second=0.01)
    try:
        spam = [vote(a if i % 2 else b, ta if i % 2 else tb, "spammer", f"i{i}") for i in range(8)]
        other = vote(a, ta, "someone-else")
    finally:
        server.ctx.voter_limiter = saved
    assert sum(r["ok"] for r in spam) == 3
    assert {r["error"]["code"] for r in spam if not r["ok"]} == {"rate_limited"}
    assert other["ok"], other


def test_forged_tokens_and_signatures(server: Server, dash: Dashboard, clients) -> None:
    pk = setup(dash, "signed")
    c = clients()
    t = login(c, pk)
    base = {"id": "signed", "voteTo": "s", "value": 1}
    # every single-character change of a real login token is rejected
    for i in (0, len(t) // 2, len(t) - 1):
        forged = t[:i] + ("A" if t[i] != "A" else "B") + t[i + 1 :]
        r = c.call("vote", {**base, "userId": "u", "token": forged})
        assert not r["ok"] and r["error"]["code"] in {"bad_token", "token_expired"}, r
    # a signature made with another environment's secret key
    other = Dashboard(server.url)
    setup(other, "signed")
    foreign = sign_user_id(other.keys()["secretKey"], "alice")
    r = c.call("vote", {**base, "userId": "alice", "signature": foreign, "token": t})
    assert not r["ok"] and r["error"]["code"] == "bad_signature", r
    # a login token of the other environment never reaches this environment's groups
    t_other = login(clients(), other.keys()["publicKey"])
    r = c.call("get-votes", {"id": "signed", "voteTo": "s", "userId": "alice", "token": t_other})
    assert r["ok"] and r["total"]["count"] == 0  # the other env's own, empty group
    # HTTP: a forged public key gets no voter token
    r2 = requests.get(server.url + "/api/voter-token", params={"key": pk + "x"}, timeout=TIMEOUT)
    assert 400 <= r2.status_code < 500
