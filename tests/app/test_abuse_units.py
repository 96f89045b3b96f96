"""The abuse layers' parts without a server: proof-of-work challenges and their ledger, the
IP + user-agent window, the refusal counts waiting for storage."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from clickvote import proof
from clickvote.abuse import (
    DAY_MS,
    IpWindow,
    Refusals,
    admit_and_take,
    admit_voter,
    tightened,
    window_key,
)
from clickvote.client import proof_of_work
from clickvote.ratelimit import WINDOW_REFUSED, RateLimiter
from clickvote.security import Box

BOX = Box(b"k" * 32)


def other_last(challenge: str) -> str:
    """The challenge with its mac's last character changed (always to another one)."""
    return challenge[:-1] + ("1" if challenge.endswith("0") else "0")


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
        (lambda s: {**s, "challenge": other_last(s["challenge"])}, "not a challenge"),
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


class Shared:
    """A shared backend answering `answer` (None: not answering) and recording the asks."""

    def __init__(self, answer: bool | None) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str, float, int]] = []

    async def admit_voter(self, key: str, voter: str, window: float, limit: int) -> bool | None:
        self.asked.append((key, voter, window, limit))
        return self.answer


def test_the_shared_window_decides_where_it_answers() -> None:
    key = ("e", "g", "item", "203.0.113.7", "Firefox \ud800")
    local, shared = IpWindow(), Shared(False)

    async def admit(voter: str, limit: int = 1) -> bool:
        return await admit_voter(local, shared, key, voter, 3600, limit)  # type: ignore[arg-type]

    assert asyncio.run(admit("a")) is False  # the shared window's answer
    assert shared.asked == [(window_key(key), "a", 3600, 1)] and not local._seen
    assert len(window_key(key)) == 32 and window_key(key) != window_key((*key[:4], "Chrome"))
    assert asyncio.run(admit("a", limit=0)) is True and len(shared.asked) == 1  # 0: off
    shared.answer = None  # not answering (Redis down, no hub): this process' own window
    assert [asyncio.run(admit(v)) for v in ("a", "b", "a")] == [True, False, True]
    assert asyncio.run(admit_voter(local, None, key, "c", 3600, 2)) is True  # no shared one


class Both:
    """A shared backend asked the window and the bucket at once, answering `answer`."""

    def __init__(self, answer: float | None) -> None:
        self.answer = answer
        self.asked: list[Any] = []

    async def admit_and_take(self, window: Any, bucket: Any) -> float | None:
        self.asked.append((window, bucket))
        return self.answer


def test_the_window_and_the_bucket_are_one_question_with_a_local_fallback() -> None:
    key = ("e", "g", "item", "203.0.113.7", "Firefox")
    shared = Both(WINDOW_REFUSED)
    limiter = RateLimiter(1, 0.001, shared=shared)  # type: ignore[arg-type]
    local = IpWindow()

    def ask(voter: str) -> tuple[bool, float]:
        window, bucket = (key, voter, 3600.0, 1), (f"v|{voter}", 1.0, 0.001)
        return asyncio.run(admit_and_take(local, limiter, window, bucket))

    assert ask("a") == (False, 0.0)  # the shared window refused
    assert shared.asked == [((window_key(key), "a", 3600.0, 1), ("v|a", 1.0, 0.001, 1.0))]
    shared.answer = 0.25
    assert ask("a") == (True, 0.25)  # admitted, the shared bucket's wait
    assert not local._seen and not limiter._buckets
    shared.answer = None  # not answering: this process' own window, then its own bucket
    assert ask("a") == (True, 0.0)
    admitted, wait = ask("a")
    assert admitted and wait > 0  # its one token taken
    assert ask("b") == (False, 0.0) and "v|b" not in limiter._buckets  # no token taken
    assert len(shared.asked) == 5


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
