"""Abuse layers on two instances sharing PostgreSQL and Redis: a proof-of-work solution
counts once across them, and the refusals each instance counted add up in storage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clickvote.client import proof_of_work

from .conftest import TIMEOUT, Client, Dashboard, Instance, wait_until


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
