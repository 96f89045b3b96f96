"""SQLite back end: stdlib sqlite3, WAL, one connection guarded by a lock.

Statements are sub-millisecond, so they run inline in the event loop (no thread hop); the lock
only serialises the rare callers from other threads (CLI, tests). Writes use BEGIN IMMEDIATE.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from clickvote.storage.sql import SQLStorage, Tx

T = TypeVar("T")


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


class SQLiteStorage(SQLStorage):
    integrity_error = sqlite3.IntegrityError

    def __init__(self, url: str) -> None:
        self.path = sqlite_path(url)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    async def open(self) -> None:
        self.open_sync()

    def open_sync(self) -> None:
        if self._conn is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        self._conn = conn

    async def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

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
        return self.run_sync(fn, write)
