"""Background loops while the database is unavailable (PostgreSQL restarting or hung, SQLite
locked): each logs the outage as one warning when it begins and one when it ends, never a
traceback per turn, and loses nothing it was to store."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from clickvote.abuse import Refusals
from clickvote.app import _housekeeping
from clickvote.storage.base import StorageUnavailable

DOWN = "PostgreSQL did not answer within 5 s"


def logged(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, Any]]:
    return [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records]


class Flaky:
    """Unavailable for its first `down` calls, then answers."""

    def __init__(self, down: int) -> None:
        self.down, self.calls = down, 0
        self.answered = asyncio.Event()
        self.stored: list[tuple[str, int, str, int]] = []

    def call(self) -> None:
        self.calls += 1
        if self.calls <= self.down:
            raise StorageUnavailable(DOWN)
        self.answered.set()

    async def housekeeping(self) -> None:
        self.call()

    async def add_refusals(self, rows: list[tuple[str, int, str, int]]) -> None:
        self.call()
        self.stored.extend(rows)


def test_housekeeping_logs_an_outage_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="clickvote")
    ctx = Flaky(down=4)

    async def check() -> None:
        task = asyncio.create_task(_housekeeping(ctx, every=60, retry=0.001))  # type: ignore[arg-type]
        try:
            await asyncio.wait_for(ctx.answered.wait(), 10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(check())
    assert ctx.calls == 5  # retried shortly while unavailable, then not for `every`
    assert logged(caplog) == [
        ("WARNING", f"housekeeping waits for the database: {DOWN}", None),
        ("WARNING", "housekeeping resumed: the database answers again", None),
    ]


def test_refusal_counts_log_an_outage_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="clickvote")
    storage = Flaky(down=3)
    refusals = Refusals()

    async def check() -> None:
        for turn in range(4):
            refusals.count("env", "rateLimit", now_ms=0)
            await refusals.flush(storage)
            assert len(storage.stored) == (turn == 3)

    asyncio.run(check())
    assert storage.stored == [("env", 0, "rateLimit", 4)]  # none lost meanwhile
    assert logged(caplog) == [
        ("WARNING", f"storing refusal counts waits for the database: {DOWN}", None),
        ("WARNING", "storing refusal counts resumed: the database answers again", None),
    ]
