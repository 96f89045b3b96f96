"""Voting engine and storage, without the network: semantics and a property test."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tallies import recompute_tally

from clickvote.identity import KINDS
from clickvote.storage.sqlite import SQLiteStorage
from clickvote.votes import VoteError, cast_vote, validate_value

Loop = asyncio.AbstractEventLoop


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Loop, SQLiteStorage, dict]]:
    loop = asyncio.new_event_loop()
    path: Path = tmp_path_factory.mktemp("engine") / "e.db"
    storage = SQLiteStorage(f"sqlite:///{path}")
    run = loop.run_until_complete
    run(storage.open())
    run(storage.migrate())
    user = run(storage.create_user("e@example.com", "x"))
    from clickvote.storage.base import NewEnv

    run(storage.create_org(user.id, "o", [NewEnv("dev", 0, "pb_" + "a" * 32, "sealed", KINDS)]))
    env_row = run(storage.get_env_by_public_key("pb_" + "a" * 32))
    assert env_row is not None
    groups = {
        "single": run(storage.create_group(env_row.id, "single", "single", None, None)),
        "range": run(storage.create_group(env_row.id, "range", "range", 1, 5)),
    }
    yield loop, storage, groups
    run(storage.close())
    loop.close()


def test_validate_against_stored_group(env) -> None:
    _, _, groups = env
    assert validate_value(groups["single"], -1) == -1
    assert validate_value(groups["range"], 5) == 5 and validate_value(groups["range"], 0) == 0
    for group, bad in (
        (groups["single"], 2),
        (groups["range"], 6),
        (groups["range"], -1),
        (groups["single"], True),
        (groups["single"], None),
        (groups["range"], 1.5),
    ):
        with pytest.raises(VoteError):
            validate_value(group, bad)


counter = iter(range(10**9))

votes_strategy = st.lists(
    st.tuples(
        st.sampled_from(["single", "range"]), st.integers(0, 4), st.integers(-1, 5), st.booleans()
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(votes=votes_strategy)
def test_totals_equal_truth_with_retries(env, votes) -> None:
    loop, storage, groups = env
    item = f"item-{next(counter)}"
    truth: dict[str, dict[int, int]] = {"single": {}, "range": {}}
    sent: list[tuple[str, int, int, str]] = []
    for kind, voter, value, retry in votes:
        if retry and sent:
            # a retried message: same msgId, counts nothing, returns the stored result
            k, v, val, mid = sent[-1]
            resp, replayed = loop.run_until_complete(
                cast_vote(storage, groups[k], item, f"v{v}", val, mid)
            )
            assert replayed
            continue
        mid = f"m{next(counter)}"
        try:
            resp, replayed = loop.run_until_complete(
                cast_vote(storage, groups[kind], item, f"v{voter}", value, mid)
            )
        except VoteError:
            assert (kind == "single" and value not in (-1, 0, 1)) or (
                kind == "range" and value == -1
            )
            continue
        assert not replayed
        truth[kind][voter] = value
        sent.append((kind, voter, value, mid))
    for kind, values in truth.items():
        live = [v for v in values.values() if v != 0]
        state_val, tally = loop.run_until_complete(storage.get_vote(groups[kind].id, item, "v0"))
        assert tally.voters == len(live) and tally.total == sum(live)
        assert state_val == values.get(0, 0)
        recomputed = loop.run_until_complete(recompute_tally(storage, groups[kind].id, item))
        assert recomputed == tally
    if truth["range"]:
        live = [v for v in truth["range"].values() if v]
        resp, _ = loop.run_until_complete(cast_vote(storage, groups["range"], item, "probe", 0))
        assert resp["total"]["avg"] == (math.ceil(sum(live) / len(live)) if live else 0)
