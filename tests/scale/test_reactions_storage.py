"""Reactions groups on SQLite and PostgreSQL: toggles, per-id totals, maxPerVoter, redefinition."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from clickvote import reactions
from clickvote.storage.sql import SQLStorage
from clickvote.votes import VoteError, cast_vote, current_state

from .conftest import run
from .test_storage_contract import fresh, kind, pg_or_none, seed  # noqa: F401


@pytest.fixture
def db(fresh: Any) -> SQLStorage:  # noqa: F811
    return fresh()  # type: ignore[no-any-return]


ITEMS = [{"id": "👍", "label": "Like"}, {"id": "heart", "label": "Love"}, {"id": "🎉"}]


async def make(s: SQLStorage, max_per_voter: int = 2) -> Any:
    _, env = await seed(s)
    defined = reactions.define(ITEMS, max_per_voter, None)
    return await s.create_group(env, "react", "reactions", None, None, defined)


async def toggle(s: SQLStorage, group: Any, voter: str, rid: Any, item: str = "p") -> Any:
    response, _ = await cast_vote(s, group, item, voter, rid)
    return response


def test_toggles_count_per_id(db: SQLStorage) -> None:
    async def go() -> None:
        g = await make(db)
        again = await db.get_group(g.env_id, g.id)
        assert again is not None and again.reactions == g.reactions
        r = await toggle(db, g, "a", "👍")
        assert r["voteValue"] == ["👍"] and r["previous"] == [] and r["initial"] == 0
        assert r["total"] == {"reactions": {"👍": 1, "heart": 0, "🎉": 0}, "count": 1, "voters": 1}
        await toggle(db, g, "a", "heart")
        r = await toggle(db, g, "b", "heart")
        assert r["total"]["reactions"] == {"👍": 1, "heart": 2, "🎉": 0}
        assert r["total"]["voters"] == 2 and r["initial"] == 2
        r = await toggle(db, g, "a", "👍")  # toggled off
        assert r["voteValue"] == ["heart"] and r["previous"] == ["👍", "heart"]
        mine = await current_state(db, g, "p", "a")
        assert mine["voted"] is True and mine["voteValue"] == ["heart"]
        assert mine["total"]["reactions"] == {"👍": 0, "heart": 2, "🎉": 0}
        other = await current_state(db, g, "q", "a")
        assert other["voted"] is False and other["voteValue"] == []
        assert other["total"]["reactions"] == {"👍": 0, "heart": 0, "🎉": 0}

    run(go())


def test_max_per_voter(db: SQLStorage) -> None:
    async def go() -> None:
        g = await make(db, 2)
        await toggle(db, g, "a", "👍")
        await toggle(db, g, "a", "heart")
        with pytest.raises(VoteError) as refused:
            await toggle(db, g, "a", "🎉")
        assert refused.value.code == "too_many_reactions"
        mine = await current_state(db, g, "p", "a")
        assert mine["voteValue"] == ["👍", "heart"] and mine["total"]["count"] == 2
        one = await db.create_group(
            g.env_id, "one", "reactions", None, None, reactions.define(ITEMS, 1, None)
        )
        await toggle(db, one, "a", "👍")
        r = await toggle(db, one, "a", "🎉")  # one per voter: the new one replaces the old
        assert r["voteValue"] == ["🎉"]
        assert r["total"]["reactions"] == {"👍": 0, "heart": 0, "🎉": 1}

    run(go())


@pytest.mark.parametrize("value", ["nope", 1, None, ["👍"], "Like"])
def test_unknown_values_refused(db: SQLStorage, value: Any) -> None:
    async def go() -> None:
        g = await make(db)
        with pytest.raises(VoteError) as refused:
            await toggle(db, g, "a", value)
        assert refused.value.code == "bad_value" and "👍, heart, 🎉" in refused.value.message
        assert (await current_state(db, g, "p", "a"))["total"]["count"] == 0

    run(go())


def test_rename_reorder_remove_keep_counts(db: SQLStorage) -> None:
    async def go() -> None:
        g = await make(db, 3)
        for voter, rid in [("a", "👍"), ("b", "👍"), ("b", "heart"), ("c", "🎉")]:
            await toggle(db, g, voter, rid)
        before = (await current_state(db, g, "p", "b"))["total"]["reactions"]
        # reordered and relabelled, and a new id added
        items = [{"id": "🎉", "label": "Party"}, {"id": "new"}, {"id": "heart", "label": "<3"}]
        items.append({"id": "👍", "label": "Thumbs"})
        g = await db.update_group(
            g.env_id, g.id, {"reactions": reactions.define(items, 3, g.reactions)}
        )
        state = await current_state(db, g, "p", "b")
        assert list(state["total"]["reactions"]) == ["🎉", "new", "heart", "👍"]
        assert state["total"]["reactions"] == {**before, "new": 0}
        assert state["voteValue"] == ["heart", "👍"]
        r = await toggle(db, g, "a", "new")
        assert r["total"]["reactions"] == {"🎉": 1, "new": 1, "heart": 1, "👍": 2}
        # a removed id is refused, and its count comes back with it
        kept = [x for x in items if x["id"] != "👍"]
        g = await db.update_group(
            g.env_id, g.id, {"reactions": reactions.define(kept, 3, g.reactions)}
        )
        with pytest.raises(VoteError) as refused:
            await toggle(db, g, "c", "👍")
        assert refused.value.code == "bad_value"
        assert "👍" not in (await current_state(db, g, "p", "a"))["total"]["reactions"]
        g = await db.update_group(
            g.env_id, g.id, {"reactions": reactions.define(items, 3, g.reactions)}
        )
        assert (await current_state(db, g, "p", "a"))["total"]["reactions"]["👍"] == 2

    run(go())


def test_concurrent_toggles_exact(db: SQLStorage) -> None:
    async def go() -> None:
        g = await make(db, 3)
        ids = [x["id"] for x in ITEMS]
        plan = [(f"v{i % 10}", ids[(i * 7) % 3]) for i in range(90)]
        await asyncio.gather(*(toggle(db, g, v, rid) for v, rid in plan))
        held: dict[tuple[str, str], int] = {}
        for key in plan:
            held[key] = held.get(key, 0) ^ 1
        expected = {rid: sum(n for (_, r), n in held.items() if r == rid) for rid in ids}
        state = await current_state(db, g, "p", "v0")
        assert state["total"]["reactions"] == expected
        voters = {v for (v, _), n in held.items() if n}
        assert state["total"]["voters"] == len(voters)

    run(go())


def test_export_import_carries_reactions(fresh: Any) -> None:  # noqa: F811
    src: SQLStorage = fresh("src")
    dst: SQLStorage = fresh("dst")

    async def go() -> None:
        g = await make(src, 2)
        for voter, rid in [("a", "👍"), ("a", "🎉"), ("b", "🎉")]:
            await toggle(src, g, voter, rid)
        await dst.import_data(await src.export_data(include_sessions=False))
        moved = await dst.get_group(g.env_id, g.id)
        assert moved == g
        assert await current_state(dst, moved, "p", "a") == await current_state(src, g, "p", "a")
        r = await toggle(dst, moved, "b", "heart")
        assert r["total"]["reactions"] == {"👍": 1, "heart": 1, "🎉": 2}

    run(go())


def test_a_retried_toggle_counts_once(db: SQLStorage) -> None:
    async def go() -> None:
        g = await make(db)
        first, replayed = await cast_vote(db, g, "p", "a", "heart", "m1")
        again, replayed_again = await cast_vote(db, g, "p", "a", "heart", "m1")
        assert (replayed, replayed_again) == (False, True) and again == first
        state = await current_state(db, g, "p", "a")
        assert state["voteValue"] == ["heart"] and state["total"]["reactions"]["heart"] == 1

    run(go())
