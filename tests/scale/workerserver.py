"""`clickvote serve --workers N` as a process on 127.0.0.1, and clients placed on each worker
(the worker that owns an Engine.IO session is the number before the "." of its sid)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import socketio
from hardening.procserver import ServerProcess

from clickvote.workers import WORKER_OF

C = TypeVar("C")
TIMEOUT = 10.0
TRIES = 200  # connections opened at most to find one on each worker (a new one may be starting)


class WorkersServer(ServerProcess):
    def __init__(
        self, data_dir: Path, workers: int = 2, database_url: str = "", **env: str
    ) -> None:
        more = {"CLICKVOTE_WORKERS": str(workers), **env}
        if database_url:
            more["CLICKVOTE_DATABASE_URL"] = database_url
        super().__init__(data_dir, env=more)
        self.count = workers

    def start(self, timeout: float = 60) -> None:
        super().start(timeout)
        self.wait_workers()

    def workers(self) -> list[int]:
        """The worker processes' ids."""
        assert self.proc is not None
        pid = self.proc.pid
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except FileNotFoundError:
            return []
        return [int(p) for p in text.split()]

    def worker_pid(self, index: int) -> int:
        """The process id of worker `index` (its environment's WORKER_OF: "INDEX:FD:DIR")."""
        mark = f"{WORKER_OF}={index}:".encode()
        for pid in self.workers():
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            if any(var.startswith(mark) for var in environ):
                return pid
        raise AssertionError(f"no worker {index}")

    def wait_workers(self, gone: tuple[int, ...] = (), timeout: float = 30) -> list[int]:
        """The workers once there are `count` of them, none of them in `gone`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.workers()
            if len(pids) == self.count and not set(pids) & set(gone):
                return pids
            time.sleep(0.05)
        raise AssertionError(f"not {self.count} workers within {timeout}s: {self.workers()}")


def worker_of(sid: str) -> int:
    return int(sid.split(".", 1)[0])


def on_each_worker(open_one: Callable[[], tuple[C, str]], count: int = 2) -> list[C]:
    """One client per worker (index order): `open_one` opens a client and gives its Engine.IO
    sid; clients landing on a worker already served are closed again (by the caller's
    fixture: they stay in its list)."""
    found: dict[int, C] = {}
    for _ in range(TRIES):
        client, sid = open_one()
        found.setdefault(worker_of(sid), client)
        if len(found) == count:
            return [found[i] for i in range(count)]
        time.sleep(0.05)
    raise AssertionError(f"{TRIES} connections, workers reached: {sorted(found)}")


class SioWatcher:
    """python-socketio's client recording every event it gets."""

    def __init__(self, url: str, transports: list[str]) -> None:
        self.events: list[tuple[str, Any]] = []
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", lambda event, data=None: self.events.append((event, data)))
        self.client.connect(url, transports=transports, wait_timeout=TIMEOUT)

    @property
    def sid(self) -> str:
        return str(self.client.eio.sid)

    def call(self, event: str, data: Any) -> Any:
        return self.client.call(event, data, timeout=TIMEOUT)

    def wait_count(self, event: str, count: int, timeout: float = TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, data in reversed(self.events):
                if name == event and data["total"]["count"] == count:
                    return dict(data)
            time.sleep(0.02)
        raise AssertionError(f"no {event} with count {count} within {timeout}s: {self.events}")

    def close(self) -> None:
        self.client.disconnect()
