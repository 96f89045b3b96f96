"""SQLite back end: stdlib sqlite3, WAL, one connection guarded by a lock.

Statements are sub-millisecond, so they run inline in the event loop (no thread hop); the lock
only serialises the rare callers from other threads (CLI, tests). Writes use BEGIN IMMEDIATE.

Group commit: the write transactions requested during one turn of the event loop run in one
SQLite transaction (one COMMIT, one WAL append) at the end of that turn; each caller resumes
only after that COMMIT, so nothing is reported done before it is stored (WAL with
synchronous=NORMAL: a committed transaction survives the process being killed). If one of them
fails, the batch is rolled back and each runs again in a transaction of its own, so the failure
reaches only its caller. A read first runs the writes requested before it.

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
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

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


def _run_all(fns: list[Callable[[Tx], Any]], tx: Tx) -> list[Any]:
    return [fn(tx) for fn in fns]


class SQLiteStorage(WebhookStorage):
    integrity_error = sqlite3.IntegrityError

    def __init__(self, url: str) -> None:
        self.path = sqlite_path(url)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._pending: list[tuple[Callable[[Tx], Any], asyncio.Future[Any]]] = []
        self._checkpointer: threading.Thread | None = None
        self._stop = threading.Event()

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
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        self._conn = conn

    async def close(self) -> None:
        self._flush()
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

    def run_sync(self, fn: Callable[[Tx], T], write: bool = True) -> T:
        if self._conn is None:
            self.open_sync()
        conn = self._conn
        assert conn is not None
        with self._lock:
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                result = fn(Tx(cur))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    async def _run(self, fn: Callable[[Tx], T], write: bool = True) -> T:
        if not write:
            if self._pending:  # a read sees the writes requested before it
                self._flush()
            return self.run_sync(fn, write)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._pending.append((fn, fut))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        while self._pending:
            batch = [(fn, fut) for fn, fut in self._pending[:MAX_BATCH] if not fut.cancelled()]
            del self._pending[:MAX_BATCH]
            if not batch:
                continue
            try:
                results = self.run_sync(partial(_run_all, [fn for fn, _ in batch]))
            except Exception as exc:
                if len(batch) == 1:
                    if not batch[0][1].done():
                        batch[0][1].set_exception(exc)
                else:  # one of them failed: each again alone, the failure to its caller only
                    for fn, fut in batch:
                        self._settle(fn, fut)
                continue
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    def _settle(self, fn: Callable[[Tx], Any], fut: asyncio.Future[Any]) -> None:
        try:
            result = self.run_sync(fn)
        except Exception as exc:
            if not fut.done():
                fut.set_exception(exc)
        else:
            if not fut.done():
                fut.set_result(result)
