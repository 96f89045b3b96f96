"""A pool of daemon threads for blocking database calls.

concurrent.futures.ThreadPoolExecutor's threads are joined when the interpreter exits, so one
stuck in a call that never returns (libpq waiting on a hung PostgreSQL) would keep a stopped
server running forever. These threads are daemons: a stop waits for them only as long as its
caller chooses (`busy`), then the process exits without them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

Job = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class DaemonPool(Executor):
    """Up to `size` daemon threads, started as jobs arrive, each running one job at a time."""

    def __init__(self, size: int, name: str) -> None:
        self.size, self.name = size, name
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._free = threading.Semaphore(0)  # threads waiting for a job
        self._busy = 0  # jobs submitted and not finished
        self._lock = threading.Lock()
        self._shut = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._busy += 1
            self._jobs.put((future, fn, args, kwargs))
            if not self._free.acquire(blocking=False) and len(self._threads) < self.size:
                name = f"{self.name}_{len(self._threads)}"
                thread = threading.Thread(target=self._work, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)
        return future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn, args, kwargs = job
            del job
            if not future.set_running_or_notify_cancel():
                self._finished()
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self._finished()  # counted out before its caller hears of it
                future.set_exception(exc)
            else:
                self._finished()
                future.set_result(result)
            del future
        self._jobs.put(None)  # the next thread stops too

    def _finished(self) -> None:
        with self._lock:
            self._busy -= 1
        self._free.release()

    def busy(self) -> int:
        """Jobs submitted and not finished (running, or queued)."""
        return self._busy

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more jobs; `cancel_futures`: queued ones never run. `wait`: until every thread
        has ended (however long a job takes): use `busy()` to wait a bounded time instead."""
        with self._lock:
            self._shut = True
        if cancel_futures:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[0].cancel()
                    with self._lock:
                        self._busy -= 1
        self._jobs.put(None)
        if wait:
            for thread in self._threads:
                thread.join()
