"""PostgreSQL back end: pure-Python psycopg 3, a small pool of sync connections, each used by
one worker thread at a time.

Every call runs fn(Tx) in one transaction on a worker thread: READ COMMITTED for writes,
REPEATABLE READ READ ONLY for reads, so a read of several statements (an export, a vote and
its tally) sees one snapshot, whatever commits meanwhile (a read-only transaction never fails
to serialise). Vote updates take a
transaction-scoped advisory lock per item (`_lock`), so concurrent votes on the same item from
any number of instances are applied one after the other and the running tally stays exact.
Deadlocks/serialisation failures are retried a bounded number of times; a broken connection is
replaced.
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
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg import errors

from clickvote.storage.outbox import WebhookStorage
from clickvote.storage.sql import Tx

T = TypeVar("T")
log = logging.getLogger("clickvote.storage.postgres")

RETRIES = 8  # serialisation failures / deadlocks
POOL_SIZE = 8


def lock_key(*parts: str) -> int:
    """A signed 64-bit advisory lock key from text parts (stable across processes)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresStorage(WebhookStorage):
    integrity_error = errors.IntegrityError

    def __init__(self, url: str, pool_size: int = POOL_SIZE, connect_timeout: int = 10) -> None:
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        self.url = url
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._all: list[psycopg.Connection[Any]] = []
        self._executor: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(self.pool_size, thread_name_prefix="clickvote-pg")
        # fail fast with a clear message when the server is unreachable
        conn = await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        self._idle.put(conn)

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self.url, autocommit=False, connect_timeout=self.connect_timeout)
        except psycopg.OperationalError as exc:
            raise OSError(f"cannot connect to PostgreSQL: {exc}".strip()) from exc
        self._all.append(conn)
        return conn

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        while True:
            try:
                self._idle.get_nowait()
            except queue.Empty:
                break
        for conn in self._all:
            with contextlib.suppress(Exception):
                conn.close()
        self._all.clear()

    def _tx_lock(self, tx: Tx, *key: str) -> None:
        tx.one("SELECT pg_advisory_xact_lock(?)", lock_key(*key))

    def run_sync(self, fn: Callable[[Tx], T], write: bool = True) -> T:
        for attempt in range(RETRIES + 1):
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            broken = False
            try:
                with conn.transaction(), conn.cursor() as cur:
                    if not write:
                        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    return fn(Tx(cur, "format"))
            except (errors.SerializationFailure, errors.DeadlockDetected):
                if attempt >= RETRIES:
                    raise
                time.sleep(random.uniform(0.001, 0.01) * (attempt + 1))
            except psycopg.OperationalError:
                broken = conn.closed or conn.broken
                if not broken or attempt >= 1:
                    raise
                log.warning("PostgreSQL connection lost; reconnecting")
            finally:
                if conn.closed or conn.broken or broken:
                    self._discard(conn)
                else:
                    self._idle.put(conn)
        raise RuntimeError("unreachable")  # pragma: no cover

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
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self.run_sync, fn, write
        )
