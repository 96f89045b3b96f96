"""SQLite locked by another process (another worker): the event loop keeps running, the
writes wait their turn in order, a read waits behind them, and a caller whose wait runs out
gets an error with nothing of its transaction applied."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from clickvote.identity import KINDS
from clickvote.storage.base import NewEnv, Tally
from clickvote.storage.sql import Tx
from clickvote.storage.sqlite import SQLiteStorage, StorageBusy

from .conftest import Client, Dashboard, Server, login, setup

LIVENESS = 10.0  # seconds: a bound for what should happen at once, never a speed goal


class Holder(threading.Thread):
    """Another process's writer: holds the database's write lock (BEGIN IMMEDIATE) until told
    to let go (or `most` seconds, so a stalled test still ends)."""

    def __init__(self, path: str, most: float = LIVENESS) -> None:
        super().__init__(daemon=True)
        self.path, self.most = path, most
        self.held, self.let_go, self.released = (threading.Event() for _ in range(3))

    def run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=LIVENESS)
        try:
            conn.execute("BEGIN IMMEDIATE")
            self.held.set()
            self.let_go.wait(self.most)
            conn.execute("COMMIT")
        finally:
            conn.close()
            self.released.set()

    def holding(self) -> bool:
        return self.held.is_set() and not self.released.is_set()

    def hold(self) -> Holder:
        self.start()
        assert self.held.wait(LIVENESS)
        return self

    def release(self) -> None:
        self.let_go.set()
        self.join(LIVENESS)


async def opened(path: Path, **kw: Any) -> tuple[SQLiteStorage, str, str]:
    """A migrated store with one environment and one `single` group: (store, env, group)."""
    s = SQLiteStorage(f"sqlite:///{path}", **kw)
    await s.open()
    await s.migrate()
    user = await s.create_user("owner@example.com", "h")
    org = await s.create_org(user.id, "acme", [NewEnv("dev", 0, "pb_busy", "sealed", KINDS)])
    env = (await s.list_envs(org.id))[0].id
    group = await s.create_group(env, "likes", "single", None, None)
    return s, env, group.id


def vote(s: SQLiteStorage, env: str, group: str, voter: str, msg: str) -> Any:
    return s.apply_vote(env, group, "post", voter, 1, msg, {}, lambda o: {"total": o.after.total})


def stored(s: SQLiteStorage) -> tuple[Any, ...]:
    """(votes, events, idempotency records, tally rows): from another thread, as the CLI."""
    counts = "SELECT (SELECT COUNT(*) FROM {}), (SELECT COUNT(*) FROM {}), " + (
        "(SELECT COUNT(*) FROM {}), (SELECT COUNT(*) FROM {})"
    )
    sql = counts.format("votes", "events", "idempotency", "tallies")
    row = s.run_sync(lambda tx: tx.one(sql), write=False)
    assert row is not None
    return row


def test_a_locked_database_stalls_no_loop_and_the_vote_lands_once(tmp_path: Path) -> None:
    async def main() -> None:
        s, env, group = await opened(tmp_path / "b.db")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        holder = await asyncio.to_thread(Holder(s.path).hold)
        voted = asyncio.ensure_future(vote(s, env, group, "l:alice", "m1"))
        first_read = asyncio.ensure_future(s.get_vote(group, "post", "l:alice"))  # same turn
        gone = asyncio.ensure_future(vote(s, env, group, "l:gone", "m2"))
        seen = ticks

        async def ticked(n: int) -> None:
            while ticks < seen + n:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(ticked(5), LIVENESS)
        assert holder.holding(), "the loop stood still while the other process held the lock"
        assert not voted.done() and not first_read.done()
        gone.cancel()  # a caller that gives up while it waits: its vote is not applied
        later_read = asyncio.ensure_future(s.get_vote(group, "post", "l:alice"))
        await asyncio.sleep(0.02)
        assert not later_read.done()  # no stale answer: it waits behind the vote
        await asyncio.to_thread(holder.release)
        response, replayed = await asyncio.wait_for(voted, LIVENESS)
        assert response == {"total": 1} and not replayed
        for read in (first_read, later_read):
            assert await asyncio.wait_for(read, LIVENESS) == (1, Tally(1, 1))
        assert await asyncio.to_thread(stored, s) == (1, 1, 1, 1)
        ticking.cancel()
        await s.close()

    asyncio.run(main())


def test_busy_mid_transaction_or_at_commit_is_rolled_back_and_retried(tmp_path: Path) -> None:
    """A BUSY after BEGIN IMMEDIATE (a statement, the COMMIT) leaves nothing behind: the batch
    runs again, each write once, in the order asked."""

    async def main() -> None:
        s = SQLiteStorage(f"sqlite:///{tmp_path / 'c.db'}")
        await s.open()
        await s._run(lambda tx: tx.exec("CREATE TABLE t (n INTEGER)"))
        other = sqlite3.connect(s.path, isolation_level=None, timeout=0)

        def busy() -> sqlite3.OperationalError:
            """A genuine SQLITE_BUSY: `other` asks for the lock the store holds now."""
            try:
                other.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                return exc
            raise AssertionError("the store's transaction held no write lock")

        tries = 0

        def flaky(tx: Tx) -> int:  # busy on its first two tries, after writing
            nonlocal tries
            tries += 1
            tx.exec("INSERT INTO t VALUES (2)")
            if tries <= 2:
                raise busy()
            return 2

        def insert(n: int) -> Any:
            return s._run(lambda tx: tx.exec("INSERT INTO t VALUES (?)", n))

        await asyncio.gather(insert(1), s._run(flaky), insert(3))
        assert tries == 3

        class BusyCommit:  # the connection, but its next COMMIT finds the database busy
            def __init__(self, conn: sqlite3.Connection) -> None:
                self.conn, self.armed = conn, True

            def __getattr__(self, name: str) -> Any:
                return getattr(self.conn, name)

            def execute(self, sql: str, *args: Any) -> Any:
                if sql == "COMMIT" and self.armed:
                    self.armed = False
                    raise busy()
                return self.conn.execute(sql, *args)

        real = s._conn
        assert real is not None
        s._conn = BusyCommit(real)  # type: ignore[assignment]
        await asyncio.gather(insert(4), insert(5))
        s._conn = real
        rows = await s._run(lambda tx: tx.all("SELECT n FROM t ORDER BY rowid"), write=False)
        assert [n for (n,) in rows] == [1, 2, 3, 4, 5]
        other.close()
        await s.close()

    asyncio.run(main())


def test_a_lock_held_past_the_deadline_fails_the_caller_and_stores_nothing(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        s, env, group = await opened(tmp_path / "d.db", busy_timeout=0.2)
        holder = await asyncio.to_thread(Holder(s.path).hold)
        results = await asyncio.wait_for(
            asyncio.gather(
                vote(s, env, group, "l:bob", "m1"),
                s.get_vote(group, "post", "l:bob"),
                asyncio.to_thread(s.run_sync, lambda tx: tx.exec("DELETE FROM refusals")),
                return_exceptions=True,
            ),
            LIVENESS,
        )
        assert holder.holding()
        written, read, other_thread = results
        for failed in (written, other_thread):
            assert isinstance(failed, StorageBusy), results
            assert "locked" in str(failed) and "0.2 s" in str(failed)
        # the read waited behind the vote and failed with it, or (a slow machine: the vote had
        # given up before the read was asked) ran after it: either way it never shows the vote
        assert isinstance(read, StorageBusy) or read == (0, Tally(0, 0)), results
        await asyncio.to_thread(holder.release)
        assert await asyncio.to_thread(stored, s) == (0, 0, 0, 0)
        assert await s.get_vote(group, "post", "l:bob") == (0, Tally(0, 0))
        # the same vote again (same msgId) is a new vote now: nothing of the first was kept
        response, replayed = await vote(s, env, group, "l:bob", "m1")
        assert response == {"total": 1} and not replayed
        assert await asyncio.to_thread(stored, s) == (1, 1, 1, 1)
        await s.close()

    asyncio.run(main())


def test_a_stop_ends_the_wait_for_a_locked_database(tmp_path: Path) -> None:
    """A stop begins while a vote waits for a database another process keeps locked: the
    vote fails with StorageBusy once the stop's grace is over, long before its own 30 s
    (uvicorn would cancel it mid-call a second later), and nothing of it is stored."""

    async def main() -> None:
        s, env, group = await opened(tmp_path / "d.db")
        holder = await asyncio.to_thread(Holder(s.path).hold)
        waiting = asyncio.ensure_future(vote(s, env, group, "l:bob", "m1"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await s.stopping(grace=0.2)
        await s.stopping(grace=60)  # told again (the app's shutdown): the first grace holds
        with pytest.raises(StorageBusy, match="locked by another process: not waited for"):
            await asyncio.wait_for(waiting, LIVENESS)
        assert holder.holding()
        await asyncio.to_thread(holder.release)
        assert await asyncio.to_thread(stored, s) == (0, 0, 0, 0)
        await s.close()

    asyncio.run(main())


def test_a_worker_serves_while_the_database_is_locked(
    server: Server, dash: Dashboard, clients: Any
) -> None:
    """The app: a vote waiting for the lock leaves the worker serving; it lands once the lock
    is let go. One that waited past the deadline is refused as `storage_unavailable` (with
    `retryAfter`, so a page sends it again), nothing of it is stored, and sent again with its
    msgId once the lock is let go it counts once. The JSON API answers 503 and Retry-After."""
    pk = setup(dash, "busy")
    c: Client = clients()
    token = login(c, pk)
    storage = server.ctx.storage
    assert isinstance(storage, SQLiteStorage)

    def ask(user: str, msg_id: str | None = None) -> dict[str, Any]:
        data = {"id": "busy", "voteTo": "x", "userId": user, "value": 1, "token": token}
        return dict(c.call("vote", {**data, **({"msgId": msg_id} if msg_id else {})}))

    holder = Holder(storage.path).hold()
    acks: list[dict[str, Any]] = []
    voting = threading.Thread(target=lambda: acks.append(ask("ann")), daemon=True)
    voting.start()
    r = requests.get(f"{server.url}/healthz", timeout=LIVENESS / 2)
    assert r.status_code == 200 and holder.holding() and voting.is_alive()
    holder.release()
    voting.join(LIVENESS)
    assert acks and acks[0]["ok"] and acks[0]["total"]["count"] == 1, acks
    kept = storage.busy_timeout
    storage.busy_timeout = 0.2
    holder = Holder(storage.path).hold()
    try:
        refused = ask("ben", "ben-1")
        api = dash.post("/votes/", {"name": "other", "type": "single"})
    finally:
        storage.busy_timeout = kept
        holder.release()
    assert not refused["ok"] and refused["error"]["code"] == "storage_unavailable", refused
    assert refused["error"]["retryAfter"] == 1
    assert c.wait("clickvote:error")["code"] == "storage_unavailable"
    assert api.status_code == 503 and api.headers["Retry-After"] == "1", api.text
    assert api.json()["code"] == "storage_unavailable" and api.json()["statusCode"] == 503
    assert ask("cat")["total"]["count"] == 2  # ann's and cat's: nothing of ben's
    again = ask("ben", "ben-1")  # the page sends it again, its msgId the same
    assert again["ok"] and again["total"]["count"] == 3
    assert ask("ben", "ben-1")["total"]["count"] == 3  # and once more: counted once
