"""The abuse layers' parts without a server: proof-of-work challenges and their ledger, the
IP + user-agent window, the refusal counts waiting for storage."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from clickvote import proof
from clickvote.abuse import DAY_MS, IpWindow, Refusals, tightened
from clickvote.client import proof_of_work
from clickvote.security import Box

BOX = Box(b"k" * 32)


def failing_counter(challenge: str, bits: int) -> int:
    return next(c for c in range(10_000) if proof.work(challenge, c) < bits)


def test_a_solution_is_checked_with_its_challenge() -> None:
    issued = proof.issue(BOX, "env1", 8, now=1000)
    assert issued["difficulty"] == 8 and issued["expires"] == (1000 + proof.TTL) * 1000
    challenge = str(issued["challenge"])
    solved = proof_of_work(issued)
    assert solved is not None and solved["challenge"] == challenge
    assert proof.work(challenge, solved["counter"]) >= 8
    assert proof.check(BOX, "env1", 8, solved, now=1001) == (challenge, 1000.0 + proof.TTL)
    assert proof.check(BOX, "env1", 8, {**solved, "counter": str(solved["counter"])}, now=1001)
    assert proof_of_work({"challenge": None, "difficulty": 0}) is None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda s: {**s, "counter": failing_counter(s["challenge"], 8)}, "does not do"),
        (lambda s: {**s, "challenge": s["challenge"][:-1] + "0"}, "not a challenge"),
        (lambda s: {**s, "challenge": s["challenge"].replace("env1", "env2")}, "not a challenge"),
        (lambda s: {**s, "counter": -1}, "non-negative"),
        (lambda s: {**s, "counter": True}, "non-negative"),
        (lambda s: "nope", "must be"),
        (lambda s: {**s, "challenge": "v1.env1.9999999999.0.aa.bb"}, "not a challenge"),
    ],
)
def test_bad_solutions_are_refused(change: Any, why: str) -> None:
    solved = proof_of_work(proof.issue(BOX, "env1", 8, now=1000))
    with pytest.raises(proof.ProofError, match=why):
        proof.check(BOX, "env1", 8, change(solved), now=1001)


def test_expired_other_environment_and_too_easy_challenges_are_refused() -> None:
    solved = proof_of_work(proof.issue(BOX, "env1", 4, now=1000))
    with pytest.raises(proof.ProofError, match="expired"):
        proof.check(BOX, "env1", 4, solved, now=1001 + proof.TTL)
    with pytest.raises(proof.ProofError, match="another environment"):
        proof.check(BOX, "env2", 4, solved, now=1001)
    with pytest.raises(proof.ProofError, match="less work"):
        proof.check(BOX, "env1", 6, solved, now=1001)
    with pytest.raises(proof.ProofError, match="not a challenge"):
        proof.check(Box(b"x" * 32), "env1", 4, solved, now=1001)  # another server's


def test_the_ledger_takes_a_challenge_once_and_trusts_for_a_while() -> None:
    ledger = proof.Ledger(max_entries=3)
    ledger.use("c1", expires=2000, now=1000)
    with pytest.raises(proof.ProofError, match="already used"):
        ledger.use("c1", expires=2000, now=1500)
    for i in range(5):
        ledger.use(f"d{i}", expires=2000, now=1000)
    assert len(ledger._used) == 3  # bounded
    ledger.trust("e", "v", now=1000)
    assert ledger.trusted("e", "v", now=1000 + proof.TRUST - 1)
    assert not ledger.trusted("e", "v", now=1000 + proof.TRUST)
    assert not ledger.trusted("e", "w", now=1000)


def test_the_window_counts_distinct_voters_per_key() -> None:
    w = IpWindow()
    key = ("e", "g", "item", "203.0.113.7", "Firefox")
    assert [w.admit(key, f"v{i}", 3600, 3, now=0) for i in range(5)] == [True] * 3 + [False] * 2
    assert w.admit(key, "v0", 3600, 3, now=1)  # a voter already seen votes again
    assert w.admit(("e", "g", "item", "203.0.113.7", "Chrome"), "v9", 3600, 3, now=1)
    assert w.admit(key, "v9", 3600, 0, now=1)  # 0: off
    assert w.admit(key, "v9", 3600, 3, now=3600.5)  # the first voters' window is over
    later = [w.admit(key, f"v1{i}", 3600, 3, now=3600.5) for i in range(3)]
    assert later == [True, True, False]  # v9, v10, v11: three again


def test_the_window_keeps_a_bounded_number_of_voters() -> None:
    w = IpWindow(max_entries=10)
    for i in range(50):
        w.admit(("e", "g", f"item{i}", "ip", "ua"), "v", 60, 5, now=0)
    assert w._entries <= 10 and len(w._seen) <= 10


class Store:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.rows: list[Any] = []

    async def add_refusals(self, rows: list[Any]) -> None:
        if self.fail:
            raise OSError("database away")
        self.rows += rows


def test_refusal_counts_reach_storage_in_one_batch_and_survive_a_failure() -> None:
    r = Refusals(max_keys=3)
    day = 20_000 * DAY_MS
    for layer in ("token", "token", "ipWindow"):
        r.count("e", layer, now_ms=day + 5)
    asyncio.run(r.flush(Store(fail=True)))  # kept for the next flush
    r.count("e", "token", now_ms=day + 6)
    ok = Store(fail=False)
    asyncio.run(r.flush(ok))
    assert sorted(ok.rows) == [("e", day, "ipWindow", 1), ("e", day, "token", 3)]
    asyncio.run(r.flush(ok))
    assert len(ok.rows) == 2  # nothing new
    for i in range(5):
        r.count(f"e{i}", "token", now_ms=day)
    assert len(r._counts) == 3  # bounded


def test_an_environment_only_tightens_the_servers_rate_limits() -> None:
    assert tightened(0, 20) == 20  # none of its own: the server's
    assert tightened(5, 20) == 5
    assert tightened(50, 20) == 20  # never looser
    assert tightened(5, 0) == 5  # the server has none: its own
