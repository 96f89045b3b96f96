"""Two ClickVote instances sharing PostgreSQL and Redis; Redis outage; SQLite -> PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from services import PostgresServer, RedisServer
from tallies import recompute_tally

from clickvote.cli import main
from clickvote.storage.sqlite import SQLiteStorage

if TYPE_CHECKING:  # psycopg needs libpq, which only the host has
    from clickvote.storage.postgres import PostgresStorage

from .conftest import Client, Dashboard, Instance, run, start_instance, wait_until

Clients = Callable[[str], Client]


def vote_msg(token: str, user: str, value: int, to: str = "p", name: str = "likes") -> dict:
    return {"id": name, "voteTo": to, "userId": user, "value": value, "token": token}


def wait_count(c: Client, event: str, count: int, timeout: float = 10.0) -> dict[str, Any]:
    """The first `event` whose total count is `count` (earlier updates are skipped)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        data = c.wait(event, timeout=left)
        if data["total"]["count"] == count:
            return dict(data)
    raise AssertionError(f"no {event} with count {count} within {timeout}s")


def watch(c: Client, pk: str, user: str, to: str = "p", name: str = "likes") -> str:
    token = c.login(pk)
    c.call("get-votes", {"id": name, "voteTo": to, "userId": user, "token": token})
    c.drain()
    return token


def test_vote_on_one_instance_reaches_the_other(cluster: list[Instance], clients: Clients) -> None:
    one, two = cluster
    dash = Dashboard(one.url)
    dash.group("likes")
    pk = dash.keys()["publicKey"]
    voter, watcher = clients(one.url), clients(two.url)
    tv = voter.login(pk)
    watch(watcher, pk, "bob")
    ack = voter.call("vote", vote_msg(tv, "alice", 1))
    assert ack["ok"] and ack["total"]["count"] == 1
    seen = watcher.wait("get-votes-likes-p")
    assert seen["poster"] == {"value": 1} and seen["total"]["count"] == 1
    # and back the other way
    tw = watcher.login(pk)
    assert watcher.call("vote", vote_msg(tw, "bob", -1))["total"]["count"] == 0
    assert wait_count(voter, "get-votes-likes-p", 0)["poster"] == {"value": -1}


def test_concurrent_votes_across_instances_are_exact(
    cluster: list[Instance], clients: Clients
) -> None:
    one, two = cluster
    dash = Dashboard(one.url)
    dash.group("stars", "range", start=1, end=5)
    pk = dash.keys()["publicKey"]
    watcher = clients(two.url)
    watch(watcher, pk, "w", name="stars")
    errors: list[BaseException] = []
    acks: list[dict[str, Any]] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            c = Client(cluster[i % 2].url)
            try:
                t = c.login(pk)
                rnd = random.Random(i)
                for _ in range(10):
                    # 16 clients, 6 shared voters: the same voter changes from both instances
                    user = f"u{rnd.randrange(6)}"
                    ack = c.call("vote", vote_msg(t, user, rnd.randrange(0, 6), name="stars"))
                    assert ack["ok"], ack
                    with lock:
                        acks.append(ack)
            finally:
                c.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not any(th.is_alive() for th in threads)
    assert not errors, errors[0]
    assert len(acks) == 160
    storage = one.ctx.storage

    async def check() -> tuple[Any, Any]:
        group = await storage.get_group_by_name(
            (await storage.get_env_by_public_key(pk)).id,  # type: ignore[union-attr]
            "stars",
        )
        assert group is not None
        _, tally = await storage.get_vote(group.id, "p", "nobody")
        return tally, await recompute_tally(storage, group.id, "p")

    # the instance's storage lives on its own event loop: read through a fresh one instead
    from clickvote.storage.postgres import PostgresStorage

    fresh = PostgresStorage(storage.url)  # type: ignore[attr-defined]
    storage = fresh
    tally, truth = run(_closing(fresh, check()))
    assert tally == truth
    # the watcher on instance 2 ends up with the final totals (last broadcast it received)
    last: dict[str, Any] | None = None
    try:
        while True:
            last = watcher.wait("get-votes-stars-p", timeout=1.0)
    except AssertionError:
        pass
    assert last is not None and last["total"]["sum"] == truth.total


async def _closing(storage: PostgresStorage, coro: Any) -> Any:
    try:
        await storage.open()
        return await coro
    finally:
        await storage.close()


def test_redis_outage_votes_still_stored_then_fanout_resumes(
    cluster: list[Instance],
    redis_server: RedisServer,
    clients: Clients,
    caplog: pytest.LogCaptureFixture,
) -> None:
    one, two = cluster
    dash = Dashboard(one.url)
    dash.group("likes")
    pk = dash.keys()["publicKey"]
    voter, remote, local = clients(one.url), clients(two.url), clients(one.url)
    tv = voter.login(pk)
    watch(remote, pk, "r")
    watch(local, pk, "l")
    caplog.set_level(logging.WARNING, logger="clickvote.fanout")
    redis_server.stop()
    for inst in cluster:
        wait_until(inst.fanout_down, what="outage noticed")
    for n in range(1, 6):
        ack = voter.call("vote", vote_msg(tv, f"u{n}", 1))
        assert ack["ok"] and ack["total"]["count"] == n  # stored and acknowledged
        # sockets on the same instance still get live updates
        assert local.wait("get-votes-likes-p")["total"]["count"] == n
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert 1 <= len(warnings) <= 2  # one per instance, not one per vote or retry
    redis_server.start()
    for inst in cluster:
        wait_until(inst.fanout_ready, timeout=15, what="fan-out resumed")
    assert any("restored" in r.getMessage() for r in caplog.records)
    ack = voter.call("vote", vote_msg(tv, "u6", 1))
    assert ack["ok"] and ack["total"]["count"] == 6
    # updates queued during the outage may arrive first, in order; the newest last
    seen = [remote.wait("get-votes-likes-p")["total"]["count"]]
    while seen[-1] != 6:
        seen.append(remote.wait("get-votes-likes-p")["total"]["count"])
    assert seen == sorted(seen), seen


def test_move_from_sqlite_to_postgres(
    pg: PostgresServer,
    tmp_path: Path,
    clients: Clients,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CLICKVOTE_BCRYPT_ROUNDS", "4")
    src_dir = tmp_path / "sqlite"
    inst = start_instance(src_dir, "", "")
    try:
        dash = Dashboard(inst.url)
        dash.group("likes")
        dash.group("stars", "range", start=1, end=5)
        pk = dash.keys()["publicKey"]
        c = clients(inst.url)
        t = c.login(pk)
        for i in range(8):
            assert c.call("vote", vote_msg(t, f"u{i}", 1 if i % 3 else -1, to=f"i{i % 3}"))["ok"]
            assert c.call("vote", vote_msg(t, f"u{i}", 1 + i % 5, name="stars"))["ok"]
        voter = dash.http.get(f"{inst.url}/api/voter-token", params={"key": pk}, timeout=10)
        anon = {"id": "likes", "voteTo": "i0", "token": t, "voterToken": voter.json()["token"]}
        assert c.call("vote", {**anon, "value": 1})["ok"]
        c.close()
    finally:
        inst.stop()
    out = tmp_path / "export.json"
    assert main(["export", "--data-dir", str(src_dir), "-o", str(out)]) == 0
    db = pg.create_database()
    target_dir = tmp_path / "pg"
    capsys.readouterr()
    assert main(["import", str(out), "--data-dir", str(target_dir), "--database-url", db]) == 0
    printed = capsys.readouterr().out
    assert "imported" in printed and "checked" in printed
    # the same totals and analytics on both sides
    src = SQLiteStorage(f"sqlite:///{src_dir / 'clickvote.db'}")
    from clickvote.storage.postgres import PostgresStorage

    dst = PostgresStorage(db)

    async def summary(s: Any) -> dict[str, Any]:
        await s.open()
        try:
            data = await s.export_data(include_sessions=False)
            groups = [r[0] for r in data["tables"]["vote_groups"]["rows"]]
            env_ids = [r[0] for r in data["tables"]["envs"]["rows"]]
            return {
                "tables": data["tables"]["tallies"],
                "stats": await s.group_stats(groups),
                "items": {g: await s.item_tallies(g, 100) for g in groups},
                "truth": {
                    (g, i): await recompute_tally(s, g, i)
                    for g in groups
                    for i in await s.distinct_vote_to(g)
                },
                "analytics": {e: await s.analytics(e, None, None, 0) for e in env_ids},
                # dashboard sessions are not exported by default
                "counts": {t: n for t, n in (await s.count_rows()).items() if t != "sessions"},
            }
        finally:
            await s.close()

    before, after = run(summary(src)), run(summary(dst))
    assert after == before
    assert sum(n for b in after["analytics"].values() for _, n in b) == 17
    # a second export from PostgreSQL matches the file (secrets decrypt with the new key)
    out2 = tmp_path / "export2.json"
    assert (
        main(["export", "--data-dir", str(target_dir), "--database-url", db, "-o", str(out2)]) == 0
    )
    assert json.loads(out2.read_text())["tables"] == json.loads(out.read_text())["tables"]
    # the old installation's voter token and login token work on the new one
    moved = start_instance(target_dir, db, "")
    try:
        c = clients(moved.url)
        state = c.call("get-votes", anon)
        assert state["ok"] and state["voted"], state
        assert c.call("vote", {**anon, "value": 0})["ok"]  # the same voter, not a new one
    finally:
        moved.stop()


def test_a_late_broadcast_from_another_instance_does_not_win(
    cluster: list[Instance], clients: Clients
) -> None:
    """Instance 1 commits first but its broadcast reaches Redis after instance 2's newer one
    (a slow link): pages must still end on the newer totals, on every instance."""
    one, two = cluster
    dash = Dashboard(one.url)
    dash.group("likes")
    pk = dash.keys()["publicKey"]
    watchers = [clients(one.url), clients(two.url)]
    for i, w in enumerate(watchers):
        watch(w, pk, f"w{i}")
    fast_publish = one.ctx.fanout.publish

    async def slow_publish(*args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(1.0)
        await fast_publish(*args, **kwargs)

    one.ctx.fanout.publish = slow_publish  # type: ignore[method-assign]
    try:
        a, b = clients(one.url), clients(two.url)
        ta, tb = a.login(pk), b.login(pk)
        first: list[Any] = []
        th = threading.Thread(target=lambda: first.append(a.call("vote", vote_msg(ta, "a", 1))))
        th.start()
        time.sleep(0.3)  # instance 1 has committed count 1 and is publishing slowly
        second = b.call("vote", vote_msg(tb, "b", 1))
        th.join(timeout=10)
    finally:
        one.ctx.fanout.publish = fast_publish  # type: ignore[method-assign]
    assert first and first[0]["total"]["count"] == 1, first
    assert second["total"]["count"] == 2, second
    time.sleep(1.5)  # the slow broadcast has landed by now
    for w in watchers:
        seen = []
        with contextlib.suppress(AssertionError):
            while True:
                seen.append(w.wait("get-votes-likes-p", timeout=0.5)["total"]["count"])
        assert seen and seen[-1] == 2, seen
