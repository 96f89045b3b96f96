"""Per-reaction counts kept in storage (reaction_counts, migration 0008), on SQLite and
PostgreSQL: exact under any toggles, computed for votes stored before, carried and checked by
export/import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from services import PostgresServer

from clickvote import reactions
from clickvote.storage.sql import ImportRefused, SQLStorage, Tx, load_migrations, split_sql
from clickvote.votes import VoteError, cast_vote

from .conftest import run
from .test_storage_contract import fresh, kind, make_storage, pg_or_none, seed  # noqa: F401

IDS = ["👍", "heart", "🎉", "x"]
RECOUNT = (  # per bit: the item's voters whose value holds it (the truth, from the votes)
    "SELECT voter, value FROM votes WHERE group_id = ? AND vote_to = ?"
)


@pytest.fixture
def db(fresh: Any) -> SQLStorage:  # noqa: F811
    return fresh()  # type: ignore[no-any-return]


async def recount(s: SQLStorage, group: Any, item: str) -> dict[str, int]:
    rows = await s._run(lambda tx: tx.all(RECOUNT, group.id, item), write=False)
    bits = dict(group.reactions.bits)
    return {rid: sum(1 for _, v in rows if int(v) >> bits[rid] & 1) for rid in IDS}


async def stored(s: SQLStorage, group: Any, item: str) -> dict[str, int]:
    return reactions.counts(group.reactions, await s.bit_counts(group.id, item))


TOGGLES = st.lists(
    st.tuples(st.integers(0, 7), st.sampled_from(IDS), st.sampled_from(["p", "q"])),
    max_size=40,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=TOGGLES, most=st.integers(1, 4))
def test_counts_equal_a_recount_after_any_toggles(db: SQLStorage, plan: Any, most: int) -> None:
    async def go() -> None:
        _, env = await seed(db)
        defined = reactions.define([{"id": i} for i in IDS], most, None)
        g = await db.create_group(env, "react", "reactions", None, None, defined)
        for voter, rid, item in plan:
            try:
                response, _ = await cast_vote(db, g, item, f"v{voter}", rid)
            except VoteError as refused:
                assert refused.code == "too_many_reactions"
                continue
            assert response["total"]["reactions"] == await recount(db, g, item)
        for item in ("p", "q"):
            assert await stored(db, g, item) == await recount(db, g, item)

    run(go())


def test_votes_stored_before_are_counted_by_the_migration(
    kind: str,  # noqa: F811
    pg_or_none: PostgresServer | None,  # noqa: F811
    tmp_path: Path,
) -> None:
    s = make_storage(kind, pg_or_none, tmp_path, "old")
    before = [(v, sql) for v, sql in load_migrations() if v < 8]

    def install(tx: Tx) -> None:
        tx.exec("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT)")
        for version, script in before:
            for statement in split_sql(script):
                tx.exec(statement)
            tx.exec("INSERT INTO schema_version (version, applied_at) VALUES (?, 0)", version)

    async def go() -> None:
        await s.open()
        try:
            await s._run(install)
            _, env = await seed(s)
            defined = reactions.define([{"id": i} for i in IDS], 4, None)
            g = await s.create_group(env, "react", "reactions", None, None, defined)
            plain = await s.create_group(env, "likes", "single", None, None)

            def old_votes(tx: Tx) -> None:  # as a server before 0008 stored them
                for voter, value in [("a", 0b0011), ("b", 0b1010), ("c", 0b0010), ("d", 1 << 30)]:
                    tx.exec("INSERT INTO votes VALUES (?, 'p', ?, ?, 0)", g.id, voter, value)
                tx.exec("INSERT INTO votes VALUES (?, 'p', 'a', 1, 0)", plain.id)

            await s._run(old_votes)
            assert 8 in await s.migrate()
            assert await stored(s, g, "p") == {"👍": 1, "heart": 3, "🎉": 0, "x": 1}
            assert (await s.bit_counts(g.id, "p"))[30] == 1
            assert await s.bit_counts(plain.id, "p") == (0,) * reactions.MAX_BITS
            response, _ = await cast_vote(s, g, "p", "e", "🎉")
            assert response["total"]["reactions"] == {"👍": 1, "heart": 3, "🎉": 1, "x": 1}
        finally:
            await s.close()

    run(go())


async def voted(s: SQLStorage) -> Any:
    _, env = await seed(s)
    defined = reactions.define([{"id": i} for i in IDS], 2, None)
    g = await s.create_group(env, "react", "reactions", None, None, defined)
    for voter, rid in [("a", "👍"), ("a", "🎉"), ("b", "🎉"), ("c", "x")]:
        await cast_vote(s, g, "p", voter, rid)
    return g


def test_import_carries_the_counts_and_checks_them(fresh: Any) -> None:  # noqa: F811
    src, dst, bad, older = (fresh(name) for name in ("src", "dst", "bad", "older"))

    async def go() -> None:
        g = await voted(src)
        data = await src.export_data(include_sessions=False)
        assert len(data["tables"]["reaction_counts"]["rows"]) == 3
        await dst.import_data(data)
        assert await stored(dst, g, "p") == {"👍": 1, "heart": 0, "🎉": 2, "x": 1}
        # counts that disagree with the votes are refused, each named
        block = data["tables"]["reaction_counts"]
        col = block["columns"].index("voters")
        block["rows"][0][col] += 1
        block["rows"].pop()
        with pytest.raises(ImportRefused) as refused:
            await bad.import_data(data)
        assert len(refused.value.problems) == 2, refused.value.problems
        assert all(p.startswith("reaction_counts (") for p in refused.value.problems)
        assert "but its votes make" in refused.value.problems[0]
        assert await bad.count_rows() == dict.fromkeys(await bad.count_rows(), 0)
        # an export without them (an older server's) gets them computed from its votes
        del data["tables"]["reaction_counts"]
        await older.import_data(data)
        assert await stored(older, g, "p") == {"👍": 1, "heart": 0, "🎉": 2, "x": 1}

    run(go())


def test_top_items_by_reactions_held_on_offered_ids(db: SQLStorage) -> None:
    async def go() -> None:
        _, env = await seed(db)
        defined = reactions.define([{"id": i} for i in IDS], 4, None)
        g = await db.create_group(env, "react", "reactions", None, None, defined)
        plan = [("a", "v1", "x"), ("a", "v2", "x"), ("a", "v3", "x")]  # x: bit 3, value 8
        plan += [("b", "v1", "👍"), ("b", "v1", "heart"), ("c", "v1", "heart")]
        for item, voter, rid in plan:
            await cast_vote(db, g, item, voter, rid)
        bits = dict(g.reactions.bits)
        offered = [bits[i] for i in IDS]
        top = await db.reaction_top(g.id, offered, None, 10)
        assert [(vt, t.voters) for vt, t, _ in top] == [("a", 3), ("b", 1), ("c", 1)]
        assert reactions.counts(g.reactions, top[1][2]) == {"👍": 1, "heart": 1, "🎉": 0, "x": 0}
        by_heart = await db.reaction_top(g.id, offered, bits["heart"], 2)
        assert [vt for vt, _, _ in by_heart] == ["b", "c"]
        # a removed id's votes no longer rank its items
        kept = [bits[i] for i in IDS if i != "x"]
        assert [vt for vt, _, _ in await db.reaction_top(g.id, kept, None, 10)] == ["b", "c", "a"]

    run(go())
