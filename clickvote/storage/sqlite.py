"""SQLite back end: stdlib sqlite3, WAL, one connection guarded by a lock.

Statements are sub-millisecond, so they run inline in the event loop (no thread hop); the lock
only serialises the rare callers from other threads (CLI, tests). Writes use BEGIN IMMEDIATE.

Group commit: the write transactions requested during one turn of the event loop run in one
SQLite transaction (one COMMIT, one WAL append) at the end of that turn; each caller resumes
only after that COMMIT, so nothing is reported done before it is stored (WAL with
synchronous=NORMAL: a committed transaction survives the process being killed). If one of them
fails, the batch is rolled back and each runs again in a transaction of its own, so the failure
reaches only its caller. A read first runs the writes requested before it.

A busy database never blocks the event loop: the connection has no busy timeout, so where
another process (another worker) holds the write lock, SQLite answers SQLITE_BUSY at once; the
transaction is rolled back (nothing of it applied), and the queue (writes and the reads
requested after them, in their order) is tried again from the loop a little later (1 ms,
doubling up to 20 ms) until it goes through, each caller failing with StorageBusy only once it
has waited `busy_timeout` (the server passes its `storage_wait` setting, 5 s by default;
BUSY_TIMEOUT when the class is used on its own), or at a stop once its grace is over
(STOP_GRACE). Callers from other threads (`run_sync`) wait the same way, sleeping in their own
thread.

Checkpoints (copying the WAL back into the database file, with fsyncs) run in a background
thread on a connection of their own, instead of inside whichever COMMIT crosses the WAL size
threshold, which stalled the event loop for milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from clickvote.storage.base import STOP_GRACE, StorageUnavailable
from clickvote.storage.outbox import WebhookStorage
from clickvote.storage.sql import Tx

T = TypeVar("T")
log = logging.getLogger("clickvote.storage")

MAX_BATCH = 128  # write transactions per COMMIT
CHECKPOINT_EVERY = 0.1  # seconds between passive checkpoints by the background thread
# Should the checkpoint thread stop, the main connection still checkpoints past this many WAL
# pages (SQLite's default is 1000; the thread normally keeps the WAL far below).
BACKSTOP_PAGES = 20_000
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes a WAL file is truncated to once checkpointed
BUSY_TIMEOUT = 30.0  # seconds a caller waits for a locked database, where none is passed
RETRY_FIRST = 0.001  # seconds before the first retry of a transaction refused as busy
RETRY_MAX = 0.02  # the wait doubles up to this (a try costs microseconds)


class StorageBusy(StorageUnavailable, sqlite3.OperationalError):
    """The database stayed locked by another process for longer than the caller may wait."""


def sqlite_path(url: str) -> str:
    """sqlite:///relative/or/absolute.db, sqlite:////abs.db, sqlite:///:memory:"""
    if not url.startswith("sqlite:"):
        raise ValueError(f"not a sqlite URL: {url}")
    rest = url[len("sqlite:") :]
    if rest.startswith("///"):
        rest = rest[3:]
    elif rest.startswith("//"):
        rest = rest[2:]
    if not rest:
        raise ValueError("sqlite URL without a path")
    return rest


def is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY (any extended code): another connection holds the lock asked for."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.OperationalError) and code is not None and code & 0xFF == 5


def _run_all(fns: list[Callable[[Tx], Any]], tx: Tx) -> list[Any]:
    return [fn(tx) for fn in fns]


@dataclass(eq=False, slots=True)
class _Queued:
    """A transaction requested on the event loop, waiting for its turn."""

    fn: Callable[[Tx], Any]
    fut: asyncio.Future[Any]
    write: bool
    since: float = field(default_factory=time.monotonic)
    alone: bool = False  # failed in a batch: runs again in a transaction of its own


class SQLiteStorage(WebhookStorage):
    integrity_error = sqlite3.IntegrityError

    def __init__(self, url: str, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.path = sqlite_path(url)
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._pending: list[_Queued] = []
        self._wake: asyncio.Handle | None = None  # the _flush to come, if any
        self._retry = 0.0  # the wait before the next try while the database is busy, else 0
        self._checkpointer: threading.Thread | None = None
        self._stop = threading.Event()
        self._stop_at: float | None = None  # monotonic time a stop's grace ends

    async def open(self) -> None:
        self.open_sync()
        if self.path != ":memory:" and self._checkpointer is None:
            assert self._conn is not None
            self._conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
            self._stop.clear()
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="clickvote-sqlite-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def open_sync(self) -> None:
        if self._conn is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # it holds sealed secret keys and session hashes: its owner's only (SQLite gives
            # its -wal and -shm files the database file's mode)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        # opening may wait for the lock (WAL set up by another process), once, at start
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        conn.execute("PRAGMA busy_timeout=0")  # from now on, busy is answered at once
        self._conn = conn

    async def stopping(self, grace: float = STOP_GRACE) -> None:
        """A stop begins: no caller waits for a locked database past `grace` seconds from now
        (the first call sets the deadline)."""
        if self._stop_at is None:
            self._stop_at = time.monotonic() + grace

    async def close(self) -> None:
        if self._pending:  # what is queued still goes (or fails once it has waited its time)
            self._flush()
            await asyncio.gather(*(q.fut for q in self._pending), return_exceptions=True)
        if self._checkpointer is not None:
            self._stop.set()
            await asyncio.to_thread(self._checkpointer.join)
            self._checkpointer = None
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _checkpoint_loop(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:  # pragma: no cover - the main connection checkpoints then
            log.exception("checkpoint thread: cannot open %s", self.path)
            return
        try:
            while not self._stop.wait(CHECKPOINT_EVERY):
                try:
                    # PASSIVE: copies what it can, never waits for readers or writers
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # pragma: no cover - retried next time
                    log.warning("checkpoint failed: %s", exc)
        finally:
            conn.close()

    def _attempt(self, fn: Callable[[Tx], T], write: bool) -> T:
        """fn in one transaction, at once: SQLITE_BUSY (is_busy) if the database is locked.
        Whatever fails, the transaction is rolled back first (a BUSY at COMMIT included)."""
        if self._conn is None:
            self.open_sync()
        conn = self._conn
        assert conn is not None
        with self._lock:
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                result = fn(Tx(cur))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

    def run_sync(self, fn: Callable[[Tx], T], write: bool = True) -> T:
        """fn in one transaction, from a thread other than the event loop's (CLI, tests):
        while the database is busy, this thread sleeps and tries again."""
        deadline = time.monotonic() + self.busy_timeout
        wait = RETRY_FIRST
        while True:
            try:
                return self._attempt(fn, write)
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise self._gave_up() from exc
            time.sleep(wait)
            wait = min(wait * 2, RETRY_MAX)

    def _gave_up(self, q: _Queued | None = None) -> StorageBusy:
        if q is not None and self._give_up_at(q) < q.since + self.busy_timeout:
            return StorageBusy("database is locked by another process: not waited for at a stop")
        return StorageBusy(
            f"database is locked: another process held it for over {self.busy_timeout:g} s"
        )

    def _give_up_at(self, q: _Queued) -> float:
        """When `q`'s caller stops waiting for a locked database."""
        until = q.since + self.busy_timeout
        return until if self._stop_at is None else min(until, self._stop_at)

    async def _run(self, fn: Callable[[Tx], T], write: bool = True) -> T:
        if not write:
            if self._pending and not self._retry:  # the writes requested before it, first
                self._flush()
            if not self._pending:
                try:
                    return self._attempt(fn, False)
                except sqlite3.OperationalError as exc:
                    if not is_busy(exc):
                        raise
        # queued: behind the writes still waiting for a busy database, a read too
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._pending.append(_Queued(fn, fut, write))
        if self._wake is None:
            self._wake = loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        """Run the queue in order, each batch in one transaction; on SQLITE_BUSY, stop and
        try again from the same place a little later."""
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        while self._pending:
            scanned, batch = self._next_batch()
            if not batch:  # only callers that gave up
                del self._pending[:scanned]
                continue
            try:
                results = self._attempt(partial(_run_all, [q.fn for q in batch]), batch[0].write)
            except Exception as exc:
                if is_busy(exc):
                    self._busy()
                    return
                self._retry = 0.0
                if len(batch) > 1:  # each again alone: the failure to its caller only
                    for q in batch:
                        q.alone = True
                else:
                    del self._pending[:scanned]
                    batch[0].fut.set_exception(exc)
                continue
            self._retry = 0.0
            del self._pending[:scanned]
            for q, result in zip(batch, results, strict=True):
                q.fut.set_result(result)
        self._retry = 0.0  # drained (its last callers may have given up while it was busy)

    def _next_batch(self) -> tuple[int, list[_Queued]]:
        """The transaction at the head of the queue: up to MAX_BATCH writes, or one read, or
        one that failed in a batch; and how many entries it spans (cancelled ones skipped)."""
        batch: list[_Queued] = []
        scanned = 0
        for q in self._pending:
            if q.fut.done():  # its caller gave up: not applied
                scanned += 1
                continue
            if batch and (not q.write or q.alone or batch[0].alone or not batch[0].write):
                break
            batch.append(q)
            scanned += 1
            if len(batch) == MAX_BATCH:
                break
        return scanned, batch

    def _busy(self) -> None:
        """The database is locked by another process: fail those that waited their time,
        try the rest again later."""
        now = time.monotonic()
        while self._pending and now >= self._give_up_at(self._pending[0]):
            q = self._pending.pop(0)
            if not q.fut.done():
                q.fut.set_exception(self._gave_up(q))
        if not self._pending:
            self._retry = 0.0
            return
        self._retry = min(max(self._retry * 2, RETRY_FIRST), RETRY_MAX)
        left = self._give_up_at(self._pending[0]) - now
        self._wake = asyncio.get_running_loop().call_later(min(self._retry, left), self._flush)
