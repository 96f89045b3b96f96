"""A vote can be changed only by the voter who cast it (issue 20 item 1), and room names are
unambiguous (issue 12 item 11). Each way in, on SQLite (natively and in the images) and on
PostgreSQL (host)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
import requests
from services import PostgresServer, free_port, load_settings, start_uvicorn
from tallies import recompute_tally

from clickvote.app import create_app
from clickvote.identity import Voter
from clickvote.security import sign_user_id
from clickvote.storage.sql import SQLStorage, Tx, load_migrations, split_sql
from clickvote.storage.sqlite import SQLiteStorage

from .conftest import TIMEOUT, Client, Dashboard, Server, login, setup

ERR = "clickvote:error"
KINDS = ("signed", "token", "unsigned")


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.host)])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    if request.param == "sqlite":
        yield request.getfixturevalue("server")
        return
    pg: PostgresServer = request.getfixturevalue("pg_server")
    data_dir = tmp_path_factory.mktemp("clickvote-pg-data")
    port = free_port()
    app = create_app(load_settings(port, data_dir, database_url=pg.create_database()))
    srv, thread = start_uvicorn(app, port)
    yield Server(f"http://127.0.0.1:{port}", app.api.state.ctx, data_dir)
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(backend: Server) -> Iterator[Any]:
    made: list[Client] = []

    def make() -> Client:
        c = Client(backend.url)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def voter_token(url: str, pk: str) -> requests.Response:
    return requests.get(url + "/api/voter-token", params={"key": pk}, timeout=TIMEOUT)


def count(c: Client, t: str, item: str, **who: Any) -> int:
    ack = c.call("get-votes", {"id": "likes", "voteTo": item, "token": t, **who})
    assert ack["ok"], ack
    return int(ack["total"]["count"])


def test_watchers_never_learn_a_voters_id_nor_can_unvote_them(backend: Server, page) -> None:
    dash = Dashboard(backend.url)
    pk = setup(dash)
    victim, watcher = page(), page()
    tv, tw = login(victim, pk), login(watcher, pk)
    watcher.call("get-votes", {"id": "likes", "voteTo": "w", "userId": "w1", "token": tw})
    watcher.drain()
    tok = voter_token(backend.url, pk).json()
    ack = victim.call(
        "vote", {"id": "likes", "voteTo": "w", "value": 1, "token": tv, **tok_of(tok)}
    )
    assert ack["ok"], ack
    seen = watcher.wait("get-votes-likes-w")
    assert seen["total"]["count"] == 1
    assert tok["voterId"] not in str(seen), seen  # no poster.id, nor anywhere else
    # what a watcher of the old protocol read from poster.id, sent back as a plain userId
    bad = watcher.call(
        "vote", {"id": "likes", "voteTo": "w", "userId": tok["voterId"], "value": 0, "token": tw}
    )
    assert not bad["ok"] and bad["error"]["code"] == "reserved_user_id", bad
    assert count(watcher, tw, "w") == 1
    assert count(victim, tv, "w", voterToken=tok["token"]) == 1


def tok_of(tok: dict[str, Any]) -> dict[str, Any]:
    return {"userId": tok["voterId"], "voterToken": tok["token"]}


def test_a_token_voters_id_is_not_a_plain_user_id(backend: Server, page) -> None:
    dash = Dashboard(backend.url)
    pk = setup(dash)
    c = page()
    t = login(c, pk)
    tok = voter_token(backend.url, pk).json()
    assert c.call("vote", {"id": "likes", "voteTo": "t", "value": 1, "token": t, **tok_of(tok)})[
        "ok"
    ]
    base = {"id": "likes", "voteTo": "t", "token": t, "userId": tok["voterId"]}
    for extra in (
        {"value": 0},
        {"value": 0, "signature": sign_user_id(dash.keys()["secretKey"], tok["voterId"])},
    ):
        r = c.call("vote", {**base, **extra})
        assert not r["ok"] and r["error"]["code"] == "reserved_user_id", r
    r = c.call("get-votes", base)  # nor can its state be read as a plain id
    assert not r["ok"] and r["error"]["code"] == "reserved_user_id", r
    http = requests.get(
        backend.url + "/api/votes",
        params={"key": pk, "id": "likes", "voteTo": "t", "userId": tok["voterId"]},
        timeout=TIMEOUT,
    )
    assert http.status_code == 400 and http.json()["code"] == "reserved_user_id", http.text
    assert count(c, t, "t", voterToken=tok["token"]) == 1


def test_an_unsigned_id_is_not_the_signed_user(backend: Server, page) -> None:
    dash = Dashboard(backend.url)
    pk = setup(dash)
    sk = dash.keys()["secretKey"]
    c = page()
    t = login(c, pk)
    signed = {"userId": "alice", "signature": sign_user_id(sk, "alice")}
    ack = c.call("vote", {"id": "likes", "voteTo": "s", "value": 1, "token": t, **signed})
    assert ack["ok"] and ack["userId"] == "alice", ack
    # a page sending the plain id "alice" is another voter: it neither sees nor changes hers
    plain = c.call("get-votes", {"id": "likes", "voteTo": "s", "token": t, "userId": "alice"})
    assert plain["ok"] and plain["voted"] is False, plain
    assert c.call(
        "vote", {"id": "likes", "voteTo": "s", "value": 0, "token": t, "userId": "alice"}
    )["ok"]
    mine = c.call("get-votes", {"id": "likes", "voteTo": "s", "token": t, **signed})
    assert (mine["voted"], mine["voteValue"], mine["total"]["count"]) == (True, 1, 1), mine


@pytest.mark.parametrize("setting", [{"identities": ["signed"]}, {"requireSigned": True}])
def test_signed_only_issues_and_accepts_no_voter_tokens(
    backend: Server, page, setting: dict[str, Any]
) -> None:
    dash = Dashboard(backend.url)
    pk = setup(dash)
    c = page()
    t = login(c, pk)
    tok = voter_token(backend.url, pk).json()  # fetched while tokens were accepted
    r = dash.put("/settings/", setting)
    assert r.status_code == 200 and r.json()["identities"] == ["signed"], r.text
    assert r.json()["requireSigned"] is True
    refused = voter_token(backend.url, pk)
    assert refused.status_code == 403 and refused.json()["code"] == "identity_refused", refused.text
    v = c.call("vote", {"id": "likes", "voteTo": "o", "value": 1, "token": t, **tok_of(tok)})
    assert not v["ok"] and v["error"]["code"] == "identity_refused", v
    assert count(c, t, "o") == 0


SUBSETS = [list(s) for n in (1, 2, 3) for s in itertools.combinations(KINDS, n)]


def test_each_identity_setting_does_exactly_what_it_says(backend: Server, page) -> None:
    dash = Dashboard(backend.url)
    pk = setup(dash)
    sk = dash.keys()["secretKey"]
    c = page()
    t = login(c, pk)
    tok = voter_token(backend.url, pk).json()
    options = dash.keys()["identityOptions"]
    assert [o["kind"] for o in options] == list(KINDS)
    assert all(o["label"] and o["protects"] for o in options)
    for i, kinds in enumerate(SUBSETS):
        r = dash.put("/settings/", {"identities": kinds})
        assert r.status_code == 200 and r.json()["identities"] == kinds, r.text
        item = f"e{i}"
        tries = {
            "signed": {"userId": "sam", "signature": sign_user_id(sk, "sam")},
            "token": tok_of(tok),
            "unsigned": {"userId": "ursula"},
        }
        for kind, who in tries.items():
            ack = c.call("vote", {"id": "likes", "voteTo": item, "value": 1, "token": t, **who})
            assert ack["ok"] is (kind in kinds), (kinds, kind, ack)
        assert count(c, t, item) == len(kinds)
        assert (voter_token(backend.url, pk).status_code == 200) is ("token" in kinds)
    for bad in ([], ["everyone"], ["signed", "nobody"]):
        r = dash.put("/settings/", {"identities": bad})
        assert r.status_code == 422 and r.json()["field"] == "identities", r.text
    assert dash.keys()["identities"] == SUBSETS[-1]


def test_room_names_do_not_collide(backend: Server, page) -> None:
    dash = Dashboard(backend.url)
    pk = setup(dash)
    c, bc = page(), page()
    tc, tbc = login(c, pk), login(bc, pk)
    # voter "c" watches item "col-a|b"; voter "b|c" votes on item "col-a"
    c.call("get-votes", {"id": "likes", "voteTo": "col-a|b", "userId": "c", "token": tc})
    c.drain()
    ack = bc.call(
        "vote", {"id": "likes", "voteTo": "col-a", "userId": "b|c", "value": 1, "token": tbc}
    )
    assert ack["ok"], ack
    c.nothing("get-votes-likes-col-a", 0.3)
    assert count(c, tc, "col-a|b", userId="c") == 0


# --- the migration of stored voters (0004), on both back ends --------------------------------
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.host)])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStorage]:
    if request.param == "sqlite":
        store: SQLStorage = SQLiteStorage(f"sqlite:///{tmp_path / 'old.db'}")
    else:
        from clickvote.storage.postgres import PostgresStorage

        pg: PostgresServer = request.getfixturevalue("pg_server")
        store = PostgresStorage(pg.create_database())
    asyncio.run(store.open())
    yield store
    asyncio.run(store.close())


def install_before_identities(tx: Tx) -> None:
    """The schema as it was before migration 0004, with votes as the server stored them."""
    tx.exec("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT)")
    for version, script in load_migrations():
        if version < 4:
            for statement in split_sql(script):
                tx.exec(statement)
            tx.exec("INSERT INTO schema_version VALUES (?, 0)", version)
    tx.exec("INSERT INTO orgs VALUES ('o', 'acme', 0)")
    for env, signed in (("open", 0), ("strict", 1)):
        tx.exec(
            "INSERT INTO envs (id, org_id, name, position, public_key, secret_key_sealed, "
            "require_signed, created_at) VALUES (?, 'o', ?, 0, ?, 'sealed', ?, 0)",
            env,
            env,
            f"pb_{env}",
            signed,
        )
        tx.exec(
            "INSERT INTO vote_groups VALUES (?, ?, 'likes', 'single', NULL, NULL, 0, NULL)",
            f"g-{env}",
            env,
        )
        voters = ("anon_00ff", "alice", "u:alice", "s:bob")
        for voter in voters:
            tx.exec("INSERT INTO votes VALUES (?, 'x', ?, 1, 0)", f"g-{env}", voter)
            tx.exec(
                "INSERT INTO events (id, env_id, group_id, vote_to, voter, value, previous, "
                "created_at) VALUES (?, ?, ?, 'x', ?, 1, 0, 0)",
                f"{env}-{voter}",
                env,
                f"g-{env}",
                voter,
            )
            tx.exec(
                "INSERT INTO idempotency (env_id, voter, msg_id, response, created_at) "
                "VALUES (?, ?, 'm1', '{}', 0)",
                env,
                voter,
            )
        tx.exec(
            "INSERT INTO tallies (group_id, vote_to, voters, total, updated_at) "
            "VALUES (?, 'x', 4, 4, 0)",
            f"g-{env}",
        )


def test_migration_moves_each_stored_voter_to_one_namespace(old_store: SQLStorage) -> None:
    async def go() -> None:
        await old_store._run(install_before_identities)
        assert 4 in await old_store.migrate()

        def read(tx: Tx) -> dict[str, Any]:
            return {
                "envs": sorted(tx.all("SELECT id, identities FROM envs")),
                **{
                    table: sorted(tx.all(f"SELECT {env}, voter FROM {table}"))
                    for table, env in (
                        ("votes", "group_id"),
                        ("events", "env_id"),
                        ("idempotency", "env_id"),
                    )
                },
                "tallies": sorted(tx.all("SELECT group_id, voters, total FROM tallies")),
            }

        got = await old_store._run(read, write=False)
        assert got["envs"] == [("open", "signed,token,unsigned"), ("strict", "signed")]
        open_voters = ["l:alice", "l:s:bob", "l:u:alice", "t:anon_00ff"]
        strict_voters = ["s:alice", "s:s:bob", "s:u:alice", "t:anon_00ff"]
        expected = sorted(
            [("g-open", v) for v in open_voters] + [("g-strict", v) for v in strict_voters]
        )
        assert got["votes"] == expected
        by_env = sorted([("open", v) for v in open_voters] + [("strict", v) for v in strict_voters])
        assert got["events"] == by_env and got["idempotency"] == by_env
        # one row per old voter, tallies untouched, and they still agree with the rows
        assert got["tallies"] == [("g-open", 4, 4), ("g-strict", 4, 4)]
        for env in ("open", "strict"):
            tally = await recompute_tally(old_store, f"g-{env}", "x")
            assert (tally.voters, tally.total) == (4, 4)

    asyncio.run(go())


def test_a_legacy_vote_is_taken_over_once(old_store: SQLStorage) -> None:
    """After the upgrade, a vote whose id may have come signed or plain counts once: signed
    alice sees it as hers and changes it (no second voter); the legacy row is then gone, so a
    plain "alice" is a voter of her own."""
    signed, plain = Voter("signed", "alice"), Voter("unsigned", "alice")

    def respond(o: Any) -> dict[str, Any]:
        return {"previous": o.previous, "voters": o.after.voters, "total": o.after.total}

    async def go() -> None:
        await old_store._run(install_before_identities)
        await old_store.migrate()
        value, tally = await old_store.get_vote("g-open", "x", signed.key, signed.legacy)
        assert (value, tally.voters) == (1, 4)
        vote = old_store.apply_vote
        first, _ = await vote("open", "g-open", "x", signed.key, -1, None, {}, respond, "l:alice")
        assert first == {"previous": 1, "voters": 4, "total": 2}
        assert await old_store.get_vote("g-open", "x", plain.key, plain.legacy) == (0, ANY)
        second, _ = await vote("open", "g-open", "x", plain.key, 1, None, {}, respond, "l:alice")
        assert second == {"previous": 0, "voters": 5, "total": 3}
        tally = await recompute_tally(old_store, "g-open", "x")
        assert (tally.voters, tally.total) == (5, 3)
        # a token voter has no legacy vote to take over
        assert Voter("token", "anon_00ff").legacy is None

    asyncio.run(go())


def test_migrations_run_past_a_missing_version(
    old_store: SQLStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0003 may arrive after 0004 was applied: the runner applies what it has not run yet."""
    import clickvote.storage.sql as sql

    present = [(v, s) for v, s in load_migrations() if v != 3]
    monkeypatch.setattr(sql, "load_migrations", lambda: present)
    asyncio.run(old_store.migrate())
    late = (3, "CREATE TABLE gap_probe (x INTEGER)")
    monkeypatch.setattr(sql, "load_migrations", lambda: sorted([*present, late]))
    assert asyncio.run(old_store.migrate()) == [3]
    assert asyncio.run(old_store.schema_version()) == max(v for v, _ in present)


def test_an_export_from_before_identities_imports_into_namespaces(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`clickvote import` of an export taken before migration 0004: its voters are moved by the
    same rule as an upgrade in place."""
    from clickvote.cli import main

    monkeypatch.setenv("CLICKVOTE_BCRYPT_ROUNDS", "4")
    dash = Dashboard(server.url)
    pk = setup(dash)
    c = Client(server.url)
    try:
        t = login(c, pk)
        assert c.call(
            "vote", {"id": "likes", "voteTo": "x", "userId": "al", "value": 1, "token": t}
        )["ok"]
    finally:
        c.close()
    out = tmp_path / "new.json"
    assert main(["export", "--data-dir", str(server.data_dir), "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    # the same installation as the schema before 0004 exported it
    data["schema_version"] = 3
    envs = data["tables"]["envs"]
    i = envs["columns"].index("identities")
    envs["columns"][i] = "require_signed"
    for row in envs["rows"]:
        row[i] = int(row[i] == "signed")
    a = envs["columns"].index("abuse")  # and without what later migrations added (0007)
    del envs["columns"][a]
    for row in envs["rows"]:
        del row[a]
    del data["tables"]["refusals"]
    del data["tables"]["reaction_counts"]  # (0008)
    groups = data["tables"]["vote_groups"]  # and without the later reactions column (0005)
    r = groups["columns"].index("reactions")
    del groups["columns"][r]
    for row in groups["rows"]:
        del row[r]
    for table in ("webhooks", "webhook_outbox", "webhook_log"):  # nor the tables of 0006
        del data["tables"][table]
    for table in ("votes", "events", "idempotency"):
        block = data["tables"][table]
        v = block["columns"].index("voter")
        for row in block["rows"]:
            row[v] = row[v][2:]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    target = tmp_path / "target"
    assert main(["import", str(old), "--data-dir", str(target)]) == 0
    again = tmp_path / "again.json"
    assert main(["export", "--data-dir", str(target), "-o", str(again)]) == 0
    moved = json.loads(again.read_text())
    votes = moved["tables"]["votes"]
    assert "l:al" in [row[votes["columns"].index("voter")] for row in votes["rows"]]
    envs = moved["tables"]["envs"]
    kinds = {row[envs["columns"].index("identities")] for row in envs["rows"]}
    assert "signed,token,unsigned" in kinds


def test_new_environments_take_the_configured_identities(tmp_path: Path) -> None:
    from clickvote.config import Settings
    from clickvote.context import Context

    def build(value: str) -> Context:
        return Context.build(
            Settings.from_env({"CLICKVOTE_IDENTITIES": value}, data_dir=str(tmp_path))
        )

    assert build("").new_env("dev", 0).identities == KINDS  # the default: all three
    assert build("token, signed").new_env("dev", 0).identities == ("signed", "token")
    with pytest.raises(ValueError, match="CLICKVOTE_IDENTITIES"):
        build("signed,everyone")
