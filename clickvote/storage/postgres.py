"""PostgreSQL back end: pure-Python psycopg 3, a small pool of sync connections, each used by
one worker thread at a time.

Every call runs fn(Tx) in one transaction on a worker thread: READ COMMITTED for writes,
REPEATABLE READ READ ONLY for reads, so a read of several statements (an export, a vote and
its tally) sees one snapshot, whatever commits meanwhile (a read-only transaction never fails
to serialise). Vote updates take a
transaction-scoped advisory lock per item (`_lock`), so concurrent votes on the same item from
any number of instances are applied one after the other and the running tally stays exact.
Deadlocks/serialisation failures are retried a bounded number of times.

PostgreSQL restarting or hung never hangs or loses a caller's request: a broken connection
(the server restarted or went away) is discarded with every idle one (they share its fate) and
the transaction runs again on a fresh connection, unless it broke while committing (its outcome
is unknown). Where that fails too, or no connection can be made, the caller gets
StorageUnavailable at once; one that waits longer than `answer_timeout` for an answer (the
server hung: its kernel still accepts and acknowledges, so libpq would wait forever) gets it
then. Its thread keeps the connection until the server answers, and that transaction may still
commit: a client sends the request again with its msgId, counted once.

A stop (`stopping`, then `close`) gives the transactions under way STOP_GRACE seconds: a caller
still waiting then gets StorageUnavailable, and the threads still waiting for PostgreSQL are
left behind with their connections (daemon threads: the process exits without them; a
connection is never touched by two threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import queue
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import errors

from clickvote.storage.base import STOP_GRACE, StorageUnavailable
from clickvote.storage.outbox import WebhookStorage
from clickvote.storage.sql import Tx
from clickvote.storage.threads import DaemonPool

T = TypeVar("T")
log = logging.getLogger("clickvote.storage.postgres")

RETRIES = 8  # serialisation failures / deadlocks
POOL_SIZE = 8
ANSWER_TIMEOUT = 5.0  # seconds a caller waits for PostgreSQL before StorageUnavailable


def lock_key(*parts: str) -> int:
    """A signed 64-bit advisory lock key from text parts (stable across processes)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresStorage(WebhookStorage):
    integrity_error = errors.IntegrityError

    def __init__(
        self,
        url: str,
        pool_size: int = POOL_SIZE,
        connect_timeout: int = 10,
        answer_timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        self.url = url
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.answer_timeout = answer_timeout
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._all: list[psycopg.Connection[Any]] = []
        self._executor: DaemonPool | None = None
        self._waits: set[asyncio.Future[Any]] = set()  # callers' jobs under way
        self._stop_at: float | None = None  # monotonic time the stop's grace ends

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = DaemonPool(self.pool_size, "clickvote-pg")
        # fail fast with a clear message when the server is unreachable
        conn = await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        self._idle.put(conn)

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self.url, autocommit=False, connect_timeout=self.connect_timeout)
        except psycopg.OperationalError as exc:
            why = " ".join(str(exc).split())  # libpq's message, on one log line
            raise StorageUnavailable(f"cannot connect to PostgreSQL: {why}") from exc
        self._all.append(conn)
        return conn

    async def stopping(self, grace: float = STOP_GRACE) -> None:
        """A stop begins: no caller waits for PostgreSQL past `grace` seconds from now (the
        first call sets the deadline: the server tells at its stop's start, the app again at
        its shutdown)."""
        if self._stop_at is not None:
            return
        self._stop_at = time.monotonic() + grace
        asyncio.get_running_loop().call_later(grace, self._give_up)

    def _give_up(self) -> None:
        for job in list(self._waits):
            job.cancel()  # its caller gets StorageUnavailable; a running thread goes on

    async def close(self) -> None:
        """Close the idle connections once the transactions under way have ended, or once
        the stop's grace is over without them (their threads keep their connections)."""
        pool, self._executor = self._executor, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            deadline = self._stop_at or time.monotonic() + STOP_GRACE
            while pool.busy() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if pool.busy():
                log.warning("stopping with %d PostgreSQL transaction(s) unanswered", pool.busy())
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                break
            with contextlib.suppress(Exception):
                self._discard(conn)

    def _tx_lock(self, tx: Tx, *key: str) -> None:
        tx.one("SELECT pg_advisory_xact_lock(?)", lock_key(*key))

    def run_sync(self, fn: Callable[[Tx], T], write: bool = True) -> T:
        lost = 0  # idle connections dropped after one turned out broken
        for attempt in range(RETRIES + 1):
            fresh = lost > 0 or self._idle.empty()
            try:
                conn = self._connect() if fresh else self._idle.get_nowait()
            except queue.Empty:  # another thread took the last idle one
                conn, fresh = self._connect(), True
            except StorageUnavailable as exc:
                if lost:
                    raise StorageUnavailable(f"PostgreSQL connection lost; {exc}") from exc
                raise
            committing = broken = False
            try:
                with conn.transaction(), conn.cursor() as cur:
                    if not write:
                        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    result = fn(Tx(cur, "format"))
                    committing = True
                if lost:
                    log.warning("PostgreSQL connection lost; reconnected (%d dropped)", lost)
                return result
            except (errors.SerializationFailure, errors.DeadlockDetected):
                if attempt >= RETRIES:
                    raise
                time.sleep(random.uniform(0.001, 0.01) * (attempt + 1))
            except psycopg.OperationalError as exc:
                broken = conn.closed or conn.broken
                if not broken:
                    raise
                if committing:  # it may have committed: only the caller can tell (msgId)
                    raise StorageUnavailable("PostgreSQL connection lost at commit") from exc
                if fresh:
                    raise StorageUnavailable("PostgreSQL connection lost") from exc
                lost = 1 + self._drop_idle()
            finally:
                if conn.closed or conn.broken or broken:
                    self._discard(conn)
                else:
                    self._idle.put(conn)
        raise RuntimeError("unreachable")  # pragma: no cover

    def _drop_idle(self) -> int:
        """Close every idle connection (after one of them broke); how many there were."""
        dropped = 0
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return dropped
            self._discard(conn)
            dropped += 1

    def _discard(self, conn: psycopg.Connection[Any]) -> None:
        try:
            conn.close()
        finally:
            if conn in self._all:
                self._all.remove(conn)

    async def _run(self, fn: Callable[[Tx], T], write: bool = True) -> T:
        if self._executor is None:
            await self.open()
        assert self._executor is not None
        job = asyncio.get_running_loop().run_in_executor(self._executor, self.run_sync, fn, write)
        timeout, why = self.answer_timeout, f"within {self.answer_timeout:g} s"
        if self._stop_at is not None and self._stop_at - time.monotonic() < timeout:
            timeout, why = max(0.0, self._stop_at - time.monotonic()), "before the stop"
        self._waits.add(job)
        try:
            await asyncio.wait({job}, timeout=timeout)
        finally:  # not started yet: it never runs; running: its thread keeps the connection
            unanswered = job.cancel()  # until PostgreSQL answers (the server hung)
            self._waits.discard(job)
        if unanswered:
            raise StorageUnavailable(f"PostgreSQL did not answer {why}")
        if job.cancelled():  # the stop's grace ended, or the storage closed
            raise StorageUnavailable("PostgreSQL did not answer before the stop")
        return job.result()
