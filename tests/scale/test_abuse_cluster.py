"""Abuse layers on two instances sharing PostgreSQL and Redis: a proof-of-work solution
counts once across them, the refusals each instance counted add up in storage, and the IP +
user-agent window counts one client's voters on both instances together (with Redis gone,
each instance counts on its own and votes still go through)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services import RedisServer

from clickvote.client import proof_of_work

from .conftest import TIMEOUT, Client, Dashboard, Instance, wait_until

IP_VOTERS = 2  # voters per address and browser: every page here is 127.0.0.1, one client


def test_a_solution_counts_once_across_instances(
    cluster: list[Instance], clients: Callable[[str], Client]
) -> None:
    a, b = cluster
    dash = Dashboard(a.url)
    dash.group("likes")
    pk = dash.keys()["publicKey"]
    r = dash.http.put(f"{a.url}/settings/", json={"powDifficulty": 8}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    on_a, on_b = clients(a.url), clients(b.url)
    vote: dict[str, Any] = {"id": "likes", "voteTo": "p", "value": 1, "key": pk}
    solved = proof_of_work(on_a.call("challenge", {"key": pk}))
    wait_until(  # b has heard of the new setting (its cache emptied through Redis)
        lambda: not on_b.call("vote", {**vote, "userId": "probe"})["ok"], what="setting on b"
    )
    assert on_a.call("vote", {**vote, "userId": "first", "pow": solved})["ok"]
    replay = on_b.call("vote", {**vote, "userId": "second", "pow": solved})
    assert replay["error"]["code"] == "proof_of_work_required"
    assert "already used" in replay["error"]["message"]
    fresh = proof_of_work(on_b.call("challenge", {"key": pk}))
    assert on_b.call("vote", {**vote, "userId": "second", "pow": fresh})["ok"]

    def refused() -> int:
        rows = dash.http.get(f"{a.url}/analytics/refusals?dateRange=1d", timeout=TIMEOUT).json()
        return sum(row["proofOfWork"] for row in rows)

    wait_until(lambda: refused() >= 2, what="b's refusal counts stored")  # in b's next batch
    assert refused() == 2  # b: the probe and the replay


def vote(page: Client, pk: str, voter: str, item: str = "p") -> str | None:
    """The error code of `voter`'s vote on `item` (None: counted)."""
    answer = page.call(
        "vote", {"id": "likes", "voteTo": item, "userId": voter, "value": 1, "key": pk}
    )
    return None if answer["ok"] else str(answer["error"]["code"])


def windowed(cluster: list[Instance], clients: Callable[[str], Client]) -> tuple[str, list[Client]]:
    """An environment allowing IP_VOTERS voters per address and browser, seen by both
    instances; six pages, each a connection of its own, alternating between them."""
    dash = Dashboard(cluster[0].url)
    dash.group("likes")
    pk = str(dash.keys()["publicKey"])
    r = dash.http.put(f"{cluster[0].url}/settings/", json={"ipVoters": IP_VOTERS}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    pages = [clients(inst.url) for _ in range(3) for inst in cluster]

    def window_set(page: Client, item: str) -> bool:
        codes = [vote(page, pk, f"probe{i}", item) for i in range(IP_VOTERS + 1)]
        return codes[-1] == "too_many_voters"

    for i in (0, 1):  # b hears of the new setting through Redis
        wait_until(lambda i=i: window_set(pages[i], f"probe-{i}"), what=f"setting on {i}")
    return pk, pages


def test_the_ip_window_counts_the_voters_of_every_instance(
    cluster: list[Instance], clients: Callable[[str], Client]
) -> None:
    pk, pages = windowed(cluster, clients)
    codes = [vote(pages[i], pk, f"voter{i + 1}") for i in range(5)]
    assert codes == [None] * IP_VOTERS + ["too_many_voters"] * 3  # two in all, not per instance
    assert vote(pages[3], pk, "voter1") is None  # on b now: counted, votes again
    assert vote(pages[4], pk, "voter2") is None  # on a now
    assert vote(pages[5], pk, "voter3") == "too_many_voters"


def test_with_redis_gone_each_instance_keeps_its_own_window(
    cluster: list[Instance], redis_server: RedisServer, clients: Callable[[str], Client]
) -> None:
    pk, pages = windowed(cluster, clients)
    redis_server.stop()
    codes = [vote(pages[i], pk, f"voter{i + 1}", "q") for i in range(6)]  # a, b, a, b, a, b
    assert codes == [None] * 4 + ["too_many_voters"] * 2  # two on each instance
    for page in pages[:2]:  # each counted vote stored once, none lost
        state = page.call("get-votes", {"id": "likes", "voteTo": "q", "key": pk, "userId": "x"})
        assert state["total"]["count"] == 4, state
