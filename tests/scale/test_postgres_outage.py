"""PostgreSQL restarting or hung (SIGSTOP) under an instance: a vote is refused at once with
`storage_unavailable` (never `internal`, never a hang), the page sends it again with its msgId
once the server is back, and every acknowledged vote is stored exactly once."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hardening.procserver import ServerProcess
from services import PostgresServer, load_settings, start_uvicorn
from tallies import recompute_tally

from clickvote.app import create_app
from clickvote.client import free_port

from .conftest import Client, Dashboard, Instance, run, wait_until

WAIT = 1.0  # seconds the instance waits for a hung PostgreSQL (5 by default)
BOUND = 8.0  # a refusal must come within this; it never waits for the server to come back
STOPPED = 15.0  # a stop must end within this, PostgreSQL hung or not


@pytest.fixture
def own_pg() -> Iterator[PostgresServer]:
    """A PostgreSQL of its own: these tests stop and pause it."""
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def instance(own_pg: PostgresServer, tmp_path: Path) -> Iterator[Instance]:
    port = free_port()
    # the webhook loop polls the database too: kept quiet, so the votes meet the connections
    # as the restart left them
    settings = load_settings(
        port, tmp_path, database_url=own_pg.create_database(), webhook_poll=60.0
    )
    app = create_app(settings)
    srv, thread = start_uvicorn(app, port)
    inst = Instance(f"http://127.0.0.1:{port}", app.api.state.ctx, srv, thread)
    try:
        yield inst
    finally:
        inst.stop()


@contextlib.contextmanager
def paused(server: PostgresServer) -> Iterator[None]:
    """The server's processes stopped (the postmaster first, so it starts no other): the
    kernel still accepts and acknowledges its connections, nothing answers."""
    pids = server.pids()
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def fill_pool(storage: Any, n: int) -> None:
    """Leave `n` idle connections in the instance's pool (n transactions at once)."""
    barrier = threading.Barrier(n, timeout=10)
    threads = [
        threading.Thread(target=storage.run_sync, args=(lambda tx: barrier.wait(),))
        for _ in range(n)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=10)
    assert storage._idle.qsize() >= n


class Voter:
    """One page: logged in, sending votes on item `p` of group `likes`."""

    def __init__(self, url: str, pk: str) -> None:
        self.c = Client(url)
        self.token = self.c.login(pk)

    def vote(self, user: str, msg_id: str, timeout: float = BOUND) -> dict[str, Any]:
        msg = {"id": "likes", "voteTo": "p", "userId": user, "value": 1, "msgId": msg_id}
        return dict(self.c.call("vote", {**msg, "token": self.token}, timeout=timeout))

    def send(self, user: str, msg_id: str) -> None:
        """A vote sent without waiting for its acknowledgement."""
        msg = {"id": "likes", "voteTo": "p", "userId": user, "value": 1, "msgId": msg_id}
        self.c.emit("vote", {**msg, "token": self.token})


@contextlib.contextmanager
def voting(url: str) -> Iterator[tuple[Dashboard, dict[str, Any], Voter]]:
    """An owner, its `likes` group and a voter whose first three votes are stored."""
    dash = Dashboard(url)
    group = dash.group("likes")
    voter = Voter(url, dash.keys()["publicKey"])
    try:
        for i in range(3):
            assert voter.vote(f"u{i}", f"m{i}")["ok"]
        yield dash, group, voter
    finally:
        voter.c.close()


def refused(voter: Voter, user: str, msg_id: str) -> None:
    ack = voter.vote(user, msg_id)
    assert not ack["ok"], ack
    assert ack["error"]["code"] == "storage_unavailable" and ack["error"]["retryAfter"] == 1
    assert ack["error"]["msgId"] == msg_id
    assert voter.c.wait("clickvote:error")["code"] == "storage_unavailable"


def stored(inst: Instance, group_id: str) -> tuple[int, int]:
    """(voters on the item by its votes, voters by its stored tally), read afresh."""
    from clickvote.storage.postgres import PostgresStorage  # libpq: on the host only

    async def both() -> tuple[int, int]:
        store = PostgresStorage(inst.ctx.storage.url)  # type: ignore[attr-defined]
        await store.open()
        try:
            truth = await recompute_tally(store, group_id, "p")
            tally = await store._run(
                lambda tx: tx.one(
                    "SELECT voters FROM tallies WHERE group_id = ? AND vote_to = 'p'", group_id
                ),
                write=False,
            )
            assert tally is not None
            return truth.voters, int(tally[0])
        finally:
            await store.close()

    return run(both())  # type: ignore[no-any-return]


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    traced = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not traced, [r.getMessage() for r in traced]


def test_a_postgresql_restart_loses_no_vote(
    own_pg: PostgresServer, instance: Instance, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="clickvote")
    with voting(instance.url) as (dash, group, voter):
        storage = instance.ctx.storage
        # restarted between two votes: every pooled connection is dead
        fill_pool(storage, 4)
        own_pg.halt()
        own_pg.start()
        ack = voter.vote("u3", "m3")
        assert ack["ok"] and ack["total"]["count"] == 4, ack
        assert sum("reconnected" in r.getMessage() for r in caplog.records) == 1
        # down: refused at once, the dashboard too
        fill_pool(storage, 4)
        own_pg.halt()
        caplog.clear()
        refused(voter, "u4", "m4")
        logged = [r.getMessage() for r in caplog.records]
        assert len(logged) == 1 and "\n" not in logged[0], logged  # one line
        assert logged[0].startswith("vote: PostgreSQL connection lost; cannot connect"), logged
        refused(voter, "u4", "m4")  # sent again too soon: the same
        r = dash.http.post(f"{instance.url}/votes/", json={"name": "x", "type": "single"})
        assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
        assert r.json()["code"] == "storage_unavailable" and r.json()["statusCode"] == 503
        no_tracebacks(caplog)
        # back: the page sends it again, counted once
        own_pg.start()
        ack = voter.vote("u4", "m4")
        assert ack["ok"] and not ack["replayed"] and ack["total"]["count"] == 5, ack
        ack = voter.vote("u4", "m4")
        assert ack["ok"] and ack["replayed"] and ack["total"]["count"] == 5, ack
        assert stored(instance, group["id"]) == (5, 5)
        no_tracebacks(caplog)


def test_a_hung_postgresql_never_hangs_a_vote(
    own_pg: PostgresServer, instance: Instance, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="clickvote")
    storage: Any = instance.ctx.storage
    storage.answer_timeout = WAIT
    with voting(instance.url) as (dash, group, voter):
        fill_pool(storage, 4)  # each vote below meets PostgreSQL, not a connect timeout
        with paused(own_pg):
            refused(voter, "u3", "m3")  # its transaction waits in PostgreSQL
            r = dash.http.get(f"{instance.url}/healthz", timeout=2)
            assert r.status_code == 200, r.text
            refused(voter, "u4", "m4")
        no_tracebacks(caplog)
        # once the server answers, the transactions the callers gave up on commit
        wait_until(lambda: stored(instance, group["id"]) == (5, 5), what="late commits")
        for user, msg_id in (("u3", "m3"), ("u4", "m4")):
            ack = voter.vote(user, msg_id)  # the page sends it again: counted once
            assert ack["ok"] and ack["replayed"] and ack["total"]["count"] == 5, ack
        ack = voter.vote("u5", "m5")
        assert ack["ok"] and ack["total"]["count"] == 6, ack
        assert stored(instance, group["id"]) == (6, 6)
        no_tracebacks(caplog)


def terminate(url: str, where: str = "pid <> pg_backend_pid()") -> None:
    """End the sessions of `url`'s database that match `where`, as a restart does, and wait
    until they are gone."""
    import psycopg  # libpq: on the host only

    sessions = f"FROM pg_stat_activity WHERE datname = current_database() AND {where}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"SELECT pg_terminate_backend(pid) {sessions}")
        wait_until(lambda: admin.execute(f"SELECT count(*) {sessions}").fetchone() == (0,))


def test_dead_idle_connections_cost_one_try(
    pg: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The first transaction to meet a dead connection drops every idle one (they share its
    fate) and runs on a new one: one warning, no error."""
    from clickvote.storage.postgres import PostgresStorage  # libpq: on the host only

    caplog.set_level(logging.WARNING, logger="clickvote")
    store = PostgresStorage(pg.create_database())

    async def check() -> None:
        await store.open()
        try:
            fill_pool(store, 4)
            terminate(store.url)
            assert await store._run(lambda tx: tx.one("SELECT 7"), write=False) == (7,)
            assert store._idle.qsize() == 1 and len(store._all) == 1
        finally:
            await store.close()

    run(check())
    assert [r.getMessage() for r in caplog.records] == [
        "PostgreSQL connection lost; reconnected (4 dropped)"
    ]


def test_a_connection_lost_at_commit_is_not_run_again(pg: PostgresServer) -> None:
    """Whether it committed is unknown: the caller gets StorageUnavailable (a client sends
    the vote again with its msgId), the transaction is not run a second time."""
    from clickvote.storage.base import StorageUnavailable
    from clickvote.storage.postgres import PostgresStorage  # libpq: on the host only

    store = PostgresStorage(pg.create_database())
    runs: list[int] = []

    def fn(tx: Any) -> None:
        (pid,) = tx.one("SELECT pg_backend_pid()")
        runs.append(pid)
        terminate(store.url, f"pid = {pid}")  # after its last statement, before its COMMIT

    async def check() -> None:
        await store.open()
        try:
            fill_pool(store, 2)  # an idle connection, as any after the first transaction
            with pytest.raises(StorageUnavailable) as got:
                await store._run(fn)
            assert len(runs) == 1 and "at commit" in str(got.value), (runs, got.value)
            assert await store._run(lambda tx: tx.one("SELECT 7"), write=False) == (7,)
        finally:
            await store.close()

    run(check())


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_stop_while_postgresql_hangs_ends(
    own_pg: PostgresServer, tmp_path: Path, workers: str
) -> None:
    """SIGTERM (`docker stop`) with a vote waiting in a hung PostgreSQL: the server gives it a
    short grace, then exits with status 0, leaving the thread that waits on libpq behind; each
    worker shuts down by itself (none killed by its supervisor)."""
    log = tmp_path / "server.log"
    env = {
        "CLICKVOTE_DATABASE_URL": own_pg.create_database(),
        "CLICKVOTE_WORKERS": workers,
        "CLICKVOTE_LOG_LEVEL": "info",  # uvicorn's "Application shutdown complete."
    }
    srv = ServerProcess(tmp_path / "data", env=env, log=log)
    srv.start()
    voter = None
    try:
        wait_until(lambda: logged(log, "Application startup complete") == int(workers), 60)
        dash = Dashboard(srv.url)
        dash.group("likes")
        voter = Voter(srv.url, dash.keys()["publicKey"])
        assert voter.vote("u0", "m0")["ok"]
        assert srv.proc is not None
        with paused(own_pg):
            voter.send("u1", "m1")
            time.sleep(0.5)  # its transaction now waits on PostgreSQL
            srv.proc.send_signal(signal.SIGTERM)
            assert srv.proc.wait(STOPPED) == 0
    finally:
        if voter is not None:
            voter.c.close()
        srv.stop()
    assert logged(log, "Application shutdown complete") == int(workers)
    # the vote's wait ended with the stop's grace, before uvicorn would cancel it mid-call
    assert logged(log, "Traceback") == 0 and logged(log, "graceful shutdown exceeded") == 0


def logged(log: Path, line: str) -> int:
    """How many times uvicorn logged `line` (once per worker)."""
    return log.read_text().count(line)
