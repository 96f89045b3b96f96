"""clickvote/storage/threads.py: the PostgreSQL back end's threads. A job that never returns
(libpq on a hung server) must not keep the process from exiting, nor a stop from ending."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import pytest

from clickvote.storage.threads import DaemonPool


def test_jobs_run_and_answer() -> None:
    pool = DaemonPool(2, "t")
    try:
        assert pool.submit(lambda x: x * 2, 21).result(5) == 42
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result(5)
        assert [f.result(5) for f in [pool.submit(abs, -i) for i in range(10)]] == list(range(10))
        assert pool.busy() == 0 and len(pool._threads) <= 2
        assert all(t.daemon for t in pool._threads)
    finally:
        pool.shutdown()


def test_a_stuck_job_is_left_behind_and_queued_ones_never_run() -> None:
    pool = DaemonPool(1, "t")
    stuck, ran = threading.Event(), []
    pool.submit(stuck.wait)  # as a thread waiting on a hung server
    queued = pool.submit(ran.append, 1)
    assert pool.busy() == 2
    pool.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled() and pool.busy() == 1
    with pytest.raises(RuntimeError):
        pool.submit(ran.append, 2)
    stuck.set()
    pool.shutdown()  # now every thread ends
    assert ran == [] and pool.busy() == 0


def test_run_in_executor_and_its_cancellation() -> None:
    async def check() -> None:
        pool = DaemonPool(1, "t")
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(pool, sum, [1, 2]) == 3
        release = threading.Event()
        blocking = loop.run_in_executor(pool, release.wait)
        waiting = loop.run_in_executor(pool, sum, [1])
        waiting.cancel()  # not started: it never runs
        release.set()
        await blocking
        pool.shutdown()
        assert pool.busy() == 0

    asyncio.run(check())


def test_the_interpreter_exits_with_a_job_stuck() -> None:
    code = (
        "import threading\n"
        "from clickvote.storage.threads import DaemonPool\n"
        "pool = DaemonPool(1, 't')\n"
        "pool.submit(threading.Event().wait)\n"
        "pool.shutdown(wait=False, cancel_futures=True)\n"
        "print('done')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == "done\n", out
