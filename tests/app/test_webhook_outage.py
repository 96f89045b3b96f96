"""The webhook delivery loop while the database is unavailable: it waits, logs the outage
once (no traceback) and its end once, and claims again when the database answers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from clickvote.config import Settings
from clickvote.storage.base import StorageUnavailable
from clickvote.webhooks import Deliverer


class Outbox:
    """A storage whose outbox is unavailable for its first `down` claims, then empty."""

    def __init__(self, down: int) -> None:
        self.down = down
        self.claims = 0
        self.answered = asyncio.Event()

    async def claim_webhook_events(self, now: int, until: int, limit: int) -> list[Any]:
        self.claims += 1
        if self.claims <= self.down:
            raise StorageUnavailable("PostgreSQL did not answer within 5 s")
        self.answered.set()
        return []

    async def webhook_attempted(self, attempts: list[Any], keep: int) -> None:
        return None

    async def release_webhook_events(self, ids: list[str]) -> None:
        return None

    async def trim_webhook_outboxes(self, default: int, keep: int) -> list[Any]:
        return []


def test_an_unavailable_database_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="clickvote.webhooks")
    outbox = Outbox(down=5)

    async def check() -> None:
        deliverer = Deliverer(outbox, None, Settings.from_env({}, webhook_poll=0.001))  # type: ignore[arg-type]
        deliverer.start()
        try:
            await asyncio.wait_for(outbox.answered.wait(), 10)
        finally:
            await deliverer.close()

    asyncio.run(check())
    assert outbox.claims > 5
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        (
            "WARNING",
            "webhook delivery waits for the database: PostgreSQL did not answer within 5 s",
            None,
        ),
        ("WARNING", "webhook delivery resumed: the database answers again", None),
    ]


def test_a_stop_during_an_outage_logs_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Claimed events it cannot give back are due again once their leases expire."""
    caplog.set_level(logging.INFO, logger="clickvote.webhooks")
    outbox = Outbox(down=0)

    async def release(ids: list[str]) -> None:
        raise StorageUnavailable("PostgreSQL did not answer before the stop")

    outbox.release_webhook_events = release  # type: ignore[method-assign]

    async def check() -> None:
        deliverer = Deliverer(outbox, None, Settings.from_env({}, webhook_poll=0.001))  # type: ignore[arg-type]
        deliverer._in_flight.add("e1")  # claimed, being sent
        await deliverer.close()

    asyncio.run(check())
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        (
            "WARNING",
            "webhook events not released on stopping: PostgreSQL did not answer before the stop",
            None,
        )
    ]
