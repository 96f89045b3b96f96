"""The SQL statements one vote runs inside its transaction, on SQLite (its trace callback): a
count, so a statement added to the vote path shows here. A vote adopts its voter's legacy vote
(clickvote/identity.py, Voter.legacy) with an UPDATE only where that vote is there to take."""

from __future__ import annotations

import asyncio
from pathlib import Path

from clickvote.storage.base import Group, NewEnv, Tally
from clickvote.storage.sqlite import SQLiteStorage
from clickvote.votes import cast_vote

LEGACY = "l:alice"  # a vote stored before the identity kinds were told apart
VOTER = "s:alice"  # signed alice, whose legacy id that is


async def _group(s: SQLiteStorage) -> Group:
    await s.migrate()
    user = await s.create_user("a@example.com", "h")
    org = await s.create_org(user.id, "acme", [NewEnv("dev", 0, "pb", "s", ("signed",))])
    env = (await s.list_envs(org.id))[0]
    return await s.create_group(env.id, "likes", "single", None, None)


async def _traced(s: SQLiteStorage, group: Group, voter: str, msg_id: str | None) -> list[str]:
    """The statements of one vote (with `LEGACY` to adopt), between its BEGIN and COMMIT."""
    seen: list[str] = []
    assert s._conn is not None
    s._conn.set_trace_callback(seen.append)
    try:
        await cast_vote(s, group, "post", voter, 1, msg_id, None, LEGACY)
    finally:
        s._conn.set_trace_callback(None)
    assert seen[0] == "BEGIN IMMEDIATE" and seen[-1] == "COMMIT", seen
    return [" ".join(sql.split()[:3]) for sql in seen[1:-1]]


def test_a_vote_runs_five_statements_and_seven_with_a_msg_id(tmp_path: Path) -> None:
    async def go() -> tuple[list[str], list[str]]:
        s = SQLiteStorage(f"sqlite:///{tmp_path / 'count.db'}")
        await s.open()
        try:
            group = await _group(s)
            return await _traced(s, group, "s:bob", None), await _traced(s, group, VOTER, "m1")
        finally:
            await s.close()

    plain, with_msg_id = asyncio.run(go())
    assert plain == [
        "SELECT voter, value",  # the voter's and the legacy row, one read
        "INSERT INTO votes",
        "INSERT INTO tallies",
        "INSERT INTO events",
        "INSERT INTO webhook_outbox",
    ]
    assert with_msg_id == ["SELECT response FROM", *plain, "INSERT INTO idempotency"]


def test_the_update_runs_only_where_the_legacy_vote_is_taken_over(tmp_path: Path) -> None:
    async def go() -> None:
        s = SQLiteStorage(f"sqlite:///{tmp_path / 'adopt.db'}")
        await s.open()
        try:
            group = await _group(s)
            await cast_vote(s, group, "post", LEGACY, -1)  # as migration 0004 leaves one
            taken = await _traced(s, group, VOTER, None)
            assert taken[:2] == ["SELECT voter, value", "UPDATE votes SET"], taken
            assert len(taken) == 6
            # taken over: one voter, its value changed, the legacy row gone
            assert await s.get_vote(group.id, "post", VOTER) == (1, Tally(1, 1))
            assert await s.get_vote(group.id, "post", LEGACY) == (0, Tally(1, 1))
            await cast_vote(s, group, "post", LEGACY, -1)  # a legacy row beside the voter's
            kept = await _traced(s, group, VOTER, None)
            assert "UPDATE votes SET" not in kept and len(kept) == 5
            assert await s.get_vote(group.id, "post", LEGACY) == (-1, Tally(2, 0))
        finally:
            await s.close()

    asyncio.run(go())
