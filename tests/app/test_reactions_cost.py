"""A reactions vote costs the same on an item with many votes as on one with few: it reads and
writes the item's per-reaction counts, never its votes. Counted in SQLite virtual machine
steps (deterministic), not time."""

from __future__ import annotations

import asyncio
from pathlib import Path

from clickvote import reactions
from clickvote.storage.base import NewEnv
from clickvote.storage.sqlite import SQLiteStorage
from clickvote.votes import cast_vote

STEPS = 5  # VM instructions per progress call
IDS = [{"id": "👍"}, {"id": "heart"}, {"id": "🎉"}]


async def steps_of_one_vote(tmp_path: Path, votes_before: int) -> int:
    s = SQLiteStorage(f"sqlite:///{tmp_path / f'cost{votes_before}.db'}")
    await s.open()
    try:
        await s.migrate()
        user = await s.create_user("a@example.com", "h")
        org = await s.create_org(user.id, "acme", [NewEnv("dev", 0, "pb", "s", ("token",))])
        env = (await s.list_envs(org.id))[0]
        defined = reactions.define(IDS, 3, None)
        g = await s.create_group(env.id, "react", "reactions", None, None, defined)
        for i in range(votes_before):
            await cast_vote(s, g, "post", f"v{i}", IDS[i % 3]["id"])
        calls = [0]

        def count() -> int:
            calls[0] += 1
            return 0

        assert s._conn is not None
        s._conn.set_progress_handler(count, STEPS)
        response, _ = await cast_vote(s, g, "post", "last", "heart")
        s._conn.set_progress_handler(None, STEPS)
        assert response["total"]["reactions"]["heart"] == (votes_before + 1) // 3 + 1
        return calls[0]
    finally:
        await s.close()


def test_a_vote_does_not_scan_the_items_votes(tmp_path: Path) -> None:
    few = asyncio.run(steps_of_one_vote(tmp_path, 3))
    many = asyncio.run(steps_of_one_vote(tmp_path, 300))
    # B-tree depth grows a little with the rows; a scan of 300 votes x 31 bits is far more
    assert few > 0 and many < few * 1.5, (few, many)
