"""The Storage contract, one suite run against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from services import PostgresServer
from tallies import recompute_tally

from clickvote.identity import KINDS, SIGNED, TOKEN
from clickvote.storage.base import Conflict, NewEnv, NotFound, VoteOutcome
from clickvote.storage.sql import ImportRefused, SQLStorage, Tx, load_migrations, split_sql
from clickvote.storage.sqlite import SQLiteStorage

from .conftest import run


def make_storage(kind: str, pg: PostgresServer | None, tmp_path: Path, name: str) -> SQLStorage:
    if kind == "sqlite":
        return SQLiteStorage(f"sqlite:///{tmp_path / name}.db")
    assert pg is not None
    from clickvote.storage.postgres import PostgresStorage

    return PostgresStorage(pg.create_database())


@pytest.fixture(params=["sqlite", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def pg_or_none(kind: str, request: pytest.FixtureRequest) -> PostgresServer | None:
    return request.getfixturevalue("pg") if kind == "postgres" else None


@pytest.fixture
def fresh(kind: str, pg_or_none: PostgresServer | None, tmp_path: Path) -> Iterator[Any]:
    made: list[SQLStorage] = []

    def new(name: str = "db") -> SQLStorage:
        s = make_storage(kind, pg_or_none, tmp_path, name)

        async def up() -> None:
            await s.open()
            await s.migrate()

        run(up())
        made.append(s)
        return s

    yield new
    for s in made:
        run(s.close())


@pytest.fixture
def store(fresh: Any) -> SQLStorage:
    return fresh()  # type: ignore[no-any-return]


def respond(o: VoteOutcome) -> dict[str, Any]:
    return {
        "previous": o.previous,
        "value": o.value,
        "voters": o.after.voters,
        "total": o.after.total,
    }


def envs() -> list[NewEnv]:
    return [
        NewEnv("dev", 0, f"pb_{time.monotonic_ns()}a", "sealed-a", KINDS),
        NewEnv("production", 1, f"pb_{time.monotonic_ns()}b", "sealed-b", (SIGNED,)),
    ]


async def seed(s: SQLStorage) -> tuple[str, str]:
    """A user with an org and two envs; returns (user_id, dev env id)."""
    user = await s.create_user(f"{time.monotonic_ns()}@example.com", "hash")
    org = await s.create_org(user.id, "acme", envs())
    return user.id, (await s.list_envs(org.id))[0].id


def test_schema(store: SQLStorage) -> None:
    assert run(store.schema_version()) == max(v for v, _ in load_migrations())
    assert run(store.migrate()) == []  # idempotent


def test_upgrade_from_the_first_schema_keeps_tallies(
    kind: str, pg_or_none: PostgresServer | None, tmp_path: Path
) -> None:
    s = make_storage(kind, pg_or_none, tmp_path, "old")
    (first_version, first), *later = load_migrations()

    def install_first(tx: Tx) -> None:
        tx.exec("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT)")
        for statement in split_sql(first):
            tx.exec(statement)
        tx.exec("INSERT INTO schema_version (version, applied_at) VALUES (?, 0)", first_version)

    async def go() -> None:
        await s.open()
        try:
            await s._run(install_first)
            env = "e1"

            def old_votes(tx: Tx) -> None:  # as the first schema's server stored them
                tx.exec("INSERT INTO orgs VALUES ('o1', 'acme', 0)")
                tx.exec(
                    "INSERT INTO envs (id, org_id, name, position, public_key, "
                    "secret_key_sealed, created_at) VALUES (?, 'o1', 'dev', 0, 'pb_1', 's', 0)",
                    env,
                )
                tx.exec(
                    "INSERT INTO vote_groups VALUES "
                    "('g1', ?, 'old', 'single', NULL, NULL, 0, NULL)",
                    env,
                )
                for voter in "abc":
                    tx.exec("INSERT INTO votes VALUES ('g1', 'x', ?, 1, 0)", voter)
                tx.exec("INSERT INTO tallies VALUES ('g1', 'x', 3, 3, 0)")
                tx.exec("INSERT INTO idempotency VALUES (?, 'a', 'm', '{}', 0)", env)

            await s._run(old_votes)
            assert await s.migrate() == [v for v, _ in later]
            response, _ = await s.apply_vote(
                env, "g1", "x", "u:d", 1, None, {}, lambda o: {"seq": o.seq, "total": o.after.total}
            )
            assert response == {"seq": 1, "total": 4}
            kept = await s._run(lambda tx: tx.all("SELECT voter, msg_id FROM idempotency"))
            assert kept == [("l:a", "m")]
        finally:
            await s.close()

    run(go())


def test_each_items_votes_are_numbered(store: SQLStorage) -> None:
    """The seq that orders broadcasts: 1, 2, 3... per item, in commit order; a replay takes none."""

    async def go() -> None:
        _, env = await seed(store)
        g = await store.create_group(env, "n", "single", None, None)

        async def vote(item: str, voter: str, value: int, msg: str | None = None) -> Any:
            return await store.apply_vote(
                env, g.id, item, voter, value, msg, {}, lambda o: {"seq": o.seq}
            )

        assert [(await vote("x", v, 1))[0]["seq"] for v in "abc"] == [1, 2, 3]
        assert (await vote("y", "a", 1))[0]["seq"] == 1
        assert (await vote("x", "a", 0))[0]["seq"] == 4  # an un-vote is a vote too
        first, _ = await vote("x", "d", 1, "m1")
        again, replayed = await vote("x", "d", 1, "m1")
        assert replayed and again == first == {"seq": 5}
        many = await asyncio.gather(*(vote("z", f"u{i}", 1) for i in range(20)))
        assert sorted(r["seq"] for r, _ in many) == list(range(1, 21))
        assert (await vote("x", "e", 1))[0]["seq"] == 6

    run(go())


def test_users_orgs_envs_keys(store: SQLStorage) -> None:
    async def go() -> None:
        u = await store.create_user("a@example.com", "h1")
        assert (await store.get_user_by_email("a@example.com")) == u
        assert await store.get_user_by_email("nope@example.com") is None
        with pytest.raises(Conflict) as exc:
            await store.create_user("a@example.com", "h2")
        assert exc.value.field == "email"
        b = await store.create_user("b@example.com", "h1")
        assert await store.set_password_hash(b.id, "h3")  # a rehash at login, a reset
        assert await store.get_user_by_email("b@example.com") == dataclasses.replace(
            b, password_hash="h3"
        )
        assert await store.get_user_by_email("a@example.com") == u
        assert not await store.set_password_hash("nope", "h4")
        org = await store.create_org(u.id, "acme", envs())
        assert [o.id for o in await store.list_orgs(u.id)] == [org.id]
        assert (await store.rename_org(org.id, "acme2")).name == "acme2"
        with pytest.raises(NotFound):
            await store.rename_org("missing", "x")
        dev, prod = await store.list_envs(org.id)
        assert (dev.name, dev.position, dev.identities) == ("dev", 0, KINDS)
        assert (prod.name, prod.identities) == ("production", (SIGNED,))
        assert await store.get_env_by_public_key(dev.public_key) == dev
        assert await store.get_env(prod.id) == prod
        rotated = await store.set_env_keys(dev.id, "pb_new", "sealed-new")
        assert (rotated.public_key, rotated.secret_key_sealed) == ("pb_new", "sealed-new")
        assert await store.get_env_by_public_key(dev.public_key) is None
        assert (await store.set_env_identities(dev.id, (TOKEN,))).identities == (TOKEN,)
        with pytest.raises(NotFound):
            await store.set_env_identities("missing", (TOKEN,))
        # sessions
        await store.create_session("th", u.id, 2_000)
        assert await store.get_session_user("th", 1_000) == u
        assert await store.get_session_user("th", 3_000) is None
        await store.purge(3_000, 0)
        assert await store.get_session_user("th", 1_000) is None
        await store.create_session("th2", u.id, 9_000)
        await store.delete_session("th2")
        assert await store.get_session_user("th2", 1_000) is None

    run(go())


def test_groups_crud_and_uniqueness(store: SQLStorage) -> None:
    async def go() -> None:
        _, env = await seed(store)
        g = await store.create_group(env, "likes", "single", None, None)
        r = await store.create_group(env, "stars", "range", 1, 5)
        assert (r.start, r.end, r.deleted_at) == (1, 5, None)
        with pytest.raises(Conflict):
            await store.create_group(env, "likes", "single", None, None)
        page, total = await store.list_groups(env, 0, 1)
        assert total == 2 and len(page) == 1
        assert await store.get_group_by_name(env, "stars") == r
        assert await store.get_group(env, g.id) == g
        with pytest.raises(Conflict):
            await store.update_group(env, r.id, {"name": "likes"})
        r2 = await store.update_group(env, r.id, {"name": "rating", "end": 10})
        assert (r2.name, r2.end) == ("rating", 10)
        with pytest.raises(NotFound):
            await store.update_group(env, "missing", {"name": "x"})
        assert not await store.group_has_votes(g.id)
        assert await store.delete_group(env, g.id) is True
        assert await store.delete_group(env, g.id) is False
        assert await store.get_group(env, g.id) is None
        again = await store.create_group(env, "likes", "single", None, None)  # name reusable
        assert again.id != g.id

    run(go())


def test_votes_totals_idempotency_analytics(store: SQLStorage) -> None:
    async def go() -> None:
        _, env = await seed(store)
        g = await store.create_group(env, "up", "single", None, None)
        meta: dict[str, str | None] = {"user_agent": "ua", "referrer": None}

        async def vote(voter: str, value: int, msg: str | None = None) -> tuple[Any, bool]:
            return await store.apply_vote(env, g.id, "x", voter, value, msg, meta, respond)

        assert (await vote("a", 1))[0] == {"previous": 0, "value": 1, "voters": 1, "total": 1}
        assert (await vote("b", -1))[0]["total"] == 0
        assert (await vote("a", -1))[0] == {"previous": 1, "value": -1, "voters": 2, "total": -2}
        assert (await vote("b", 0))[0] == {"previous": -1, "value": 0, "voters": 1, "total": -1}
        first, replayed = await vote("c", 1, "m1")
        assert not replayed
        second, replayed = await vote("c", 1, "m1")
        assert replayed and second == first
        value, tally = await store.get_vote(g.id, "x", "c")
        assert value == 1 and (tally.voters, tally.total) == (2, 0)
        assert await recompute_tally(store, g.id, "x") == tally
        assert await store.get_vote(g.id, "x", "b") == (0, tally)
        await vote("z", 1)
        await store.apply_vote(env, g.id, "y", "a", 1, None, meta, respond)
        assert await store.group_has_votes(g.id)
        stats = await store.group_stats([g.id, "none"])
        assert stats[g.id] == {"voters": 4, "score": 2, "items": 2, "clicks": 7}
        assert stats["none"]["clicks"] == 0
        items = await store.item_tallies(g.id, 10)
        assert [(k, t.total) for k, t in items] == [("x", 1), ("y", 1)]
        assert await store.distinct_vote_to(g.id) == ["x", "y"]
        buckets = await store.analytics(env, None, None, 0)
        assert sum(n for _, n in buckets) == 7
        assert all(h % 3_600_000 == 0 for h, _ in buckets)
        assert sum(n for _, n in await store.analytics(env, g.id, "y", 0)) == 1
        assert await store.analytics(env, g.id, None, int(time.time() * 1000) + 10**7) == []

    run(go())


def test_msg_id_is_a_retry_only_on_its_own_item(store: SQLStorage) -> None:
    """The same msgId sent for another item (or group) is a new vote, stored and counted."""

    async def go() -> None:
        _, env = await seed(store)
        g = await store.create_group(env, "m", "single", None, None)
        h = await store.create_group(env, "n", "single", None, None)

        async def vote(group: str, item: str) -> tuple[Any, bool]:
            return await store.apply_vote(env, group, item, "v", 1, "same-id", {}, respond)

        assert not (await vote(g.id, "x"))[1]
        assert not (await vote(g.id, "y"))[1]
        assert not (await vote(h.id, "x"))[1]
        assert (await vote(g.id, "y"))[1]  # a real retry is still one
        for group, item in ((g.id, "x"), (g.id, "y"), (h.id, "x")):
            value, tally = await store.get_vote(group, item, "v")
            assert (value, tally.voters, tally.total) == (1, 1, 1), (group, item)

    run(go())


def test_concurrent_votes_exact(store: SQLStorage) -> None:
    """Many overlapping votes on one item: the running tally equals the recomputed truth."""

    async def go() -> None:
        _, env = await seed(store)
        g = await store.create_group(env, "stars", "range", 1, 5)
        meta: dict[str, str | None] = {"user_agent": None, "referrer": None}
        calls = [
            store.apply_vote(env, g.id, "p", f"v{i % 12}", (i * 7) % 6, None, meta, respond)
            for i in range(120)
        ]
        await asyncio.gather(*calls)
        _, tally = await store.get_vote(g.id, "p", "v0")
        assert tally == await recompute_tally(store, g.id, "p")

    run(go())


def test_export_import(fresh: Any) -> None:
    src: SQLStorage = fresh("src")
    dst: SQLStorage = fresh("dst")

    async def go() -> None:
        user, env = await seed(src)
        await src.create_session("tok", user, 10**15)
        g = await src.create_group(env, "likes", "single", None, None)
        meta: dict[str, str | None] = {"user_agent": "ua", "referrer": "ref"}
        for i in range(5):
            await src.apply_vote(env, g.id, "a", f"u{i}", 1, f"m{i}", meta, respond)
        data = await src.export_data(include_sessions=True)
        await dst.import_data(data)
        again = await dst.export_data(include_sessions=True)
        assert again["tables"] == data["tables"]
        assert await dst.count_rows() == await src.count_rows()
        assert await recompute_tally(dst, g.id, "a") == await recompute_tally(src, g.id, "a")
        with pytest.raises(Conflict):
            await dst.import_data(data)
        without = await src.export_data(include_sessions=False)
        assert "sessions" not in without["tables"]

    run(go())


def same_database(store: SQLStorage) -> SQLStorage:
    """Another handle (its own connections) on the database of `store`."""
    if isinstance(store, SQLiteStorage):
        return SQLiteStorage(f"sqlite:///{store.path}")
    from clickvote.storage.postgres import PostgresStorage  # libpq: on the host only

    assert isinstance(store, PostgresStorage)
    return PostgresStorage(store.url)


def truth_of(tables: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int]]:
    """(voters, total) per item from an export's vote rows."""
    cols = tables["votes"]["columns"]
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for row in tables["votes"]["rows"]:
        v = dict(zip(cols, row, strict=True))
        n, s = out.get((v["group_id"], v["vote_to"]), (0, 0))
        out[(v["group_id"], v["vote_to"])] = (n + 1, s + int(v["value"]))
    return out


def tallies_of(tables: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int]]:
    cols = tables["tallies"]["columns"]
    rows = [dict(zip(cols, r, strict=True)) for r in tables["tallies"]["rows"]]
    return {(t["group_id"], t["vote_to"]): (int(t["voters"]), int(t["total"])) for t in rows}


def test_an_export_is_one_snapshot(store: SQLStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    """A vote committed while the export runs (between its read of the votes and of the
    tallies) is in neither table, or in both."""
    other = same_database(store)

    async def seed_votes() -> tuple[str, str]:
        _, env = await seed(store)
        g = await store.create_group(env, "likes", "single", None, None)
        for voter in "ab":
            await store.apply_vote(env, g.id, "x", voter, 1, None, {}, respond)
        return env, g.id

    env, gid = run(seed_votes())

    async def vote_elsewhere() -> None:
        await other.open()
        try:
            await other.apply_vote(env, gid, "x", "c", 1, None, {}, respond)
        finally:
            await other.close()

    plain_all = Tx.all

    def all_then_vote(tx: Tx, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        rows = plain_all(tx, sql, *params)
        if sql.startswith("SELECT * FROM votes "):
            th = threading.Thread(target=lambda: asyncio.run(vote_elsewhere()))
            th.start()
            th.join(timeout=30)
            assert not th.is_alive()
        return rows

    monkeypatch.setattr(Tx, "all", all_then_vote)
    data = run(store.export_data(include_sessions=False))
    monkeypatch.setattr(Tx, "all", plain_all)
    assert tallies_of(data["tables"]) == truth_of(data["tables"]) == {(gid, "x"): (2, 2)}
    assert run(recompute_tally(store, gid, "x")).voters == 3  # the vote was committed


def test_import_checks_every_tally_against_its_votes(fresh: Any) -> None:
    src: SQLStorage = fresh("src")
    dst: SQLStorage = fresh("dst")

    async def go() -> None:
        _, env = await seed(src)
        g = await src.create_group(env, "likes", "single", None, None)
        for voter in "abc":
            await src.apply_vote(env, g.id, "x", voter, 1, None, {}, respond)
        data = await src.export_data(include_sessions=False)
        tallies = data["tables"]["tallies"]
        tallies["rows"][0][tallies["columns"].index("total")] = 2  # the votes make 3
        with pytest.raises(ImportRefused) as exc:
            await dst.import_data(data)
        assert exc.value.problems == [
            f"tallies ({g.id!r}, 'x'): 3 voters / total 2, but its votes make 3 / 3"
        ]
        assert await dst.count_rows() == dict.fromkeys(await dst.count_rows(), 0)
        tallies["rows"].clear()  # votes without a tally
        with pytest.raises(ImportRefused, match="0 voters / total 0, but its votes make 3 / 3"):
            await dst.import_data(data)

    run(go())


def test_import_names_the_rows_no_back_end_can_store(fresh: Any) -> None:
    src: SQLStorage = fresh("src")
    dst: SQLStorage = fresh("dst")

    async def go() -> None:
        _, env = await seed(src)
        g = await src.create_group(env, "likes", "single", None, None)
        meta: dict[str, str | None] = {"user_agent": "ua", "referrer": None}
        await src.apply_vote(env, g.id, "x", "a", 1, None, meta, respond)
        data = await src.export_data(include_sessions=False)
        # as an older SQLite installation could hold them
        for table, col, odd in (("votes", "voter", "a\x00b"), ("events", "user_agent", "\ud800")):
            block = data["tables"][table]
            block["rows"][0][block["columns"].index(col)] = odd
        with pytest.raises(ImportRefused) as exc:
            await dst.import_data(data)
        event_id = data["tables"]["events"]["rows"][0][0]
        assert exc.value.problems == [
            f"votes (group_id={g.id!r}, vote_to='x', voter='a\\x00b'): voter must not "
            "contain NUL characters",
            f"events (created_at={data['tables']['events']['rows'][0][7]!r}, id={event_id!r}): "
            "user_agent must be valid Unicode (no lone surrogates)",
        ]
        assert await dst.count_rows() == dict.fromkeys(await dst.count_rows(), 0)

    run(go())
