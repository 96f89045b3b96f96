"""The webhook outbox in storage, on SQLite and PostgreSQL: a vote's event is stored in the
vote's transaction (and only where the environment has a webhook), claims lease events to one
claimer at a time (also two storages on one database), the delivery log stays bounded."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from clickvote.storage.base import Tally, WebhookAttempt, WebhookEvent
from clickvote.storage.sql import SQLStorage, now_ms
from clickvote.storage.sqlite import SQLiteStorage

from .conftest import run
from .test_storage_contract import fresh, kind, pg_or_none, seed, store  # noqa: F401

FAR = 10**15  # a lease that outlives the test


def respond(o: Any) -> dict[str, Any]:
    return {"total": o.after.total}


async def outbox(s: SQLStorage) -> list[tuple[Any, ...]]:
    return await s._run(lambda tx: tx.all("SELECT id, type, voters, total FROM webhook_outbox"))


def test_a_votes_event_is_stored_with_it(store: SQLStorage) -> None:  # noqa: F811
    async def go() -> None:
        _, env = await seed(store)
        g = await store.create_group(env, "likes", "single", None, None)
        await store.apply_vote(env, g.id, "x", "s:a", 1, None, {}, respond)
        assert await outbox(store) == []  # no webhook: nothing queued
        await store.set_webhook(env, "http://127.0.0.1:9/", "sealed")
        await store.apply_vote(env, g.id, "x", "s:b", 1, "m1", {}, respond)
        await store.apply_vote(env, g.id, "x", "s:b", 1, "m1", {}, respond)  # a replay
        (row,) = await outbox(store)
        (b_event,) = await store._run(
            lambda tx: tx.all("SELECT id FROM events WHERE voter = 's:b'")
        )
        assert row == (b_event[0], "vote", 2, 2)  # the vote's own event id

        def refuse(o: Any) -> dict[str, Any]:
            raise RuntimeError("refused inside the transaction")

        with contextlib.suppress(RuntimeError):
            await store.apply_vote(env, g.id, "y", "s:c", 1, None, {}, refuse)
        assert len(await outbox(store)) == 1  # rolled back with the vote
        (event,) = await store.claim_webhook_events(now_ms(), FAR, 10)
        assert (event.group and event.group.name, event.vote_to) == ("likes", "x")
        assert (event.after, event.value, event.previous, event.attempt) == (Tally(2, 2), 1, 0, 1)
        assert await store.clear_webhook(env) and await outbox(store) == []

    run(go())


def attempt(event: WebhookEvent, n: int, delivered: bool) -> WebhookAttempt:
    at = now_ms() + n
    status = 204 if delivered else 500
    return WebhookAttempt(
        f"{at:012x}{n:06x}{event.id[-6:]}", event.id, event.type, n, status, None, delivered, at, 1
    )


def test_claims_lease_retry_and_release(store: SQLStorage) -> None:  # noqa: F811
    async def go() -> None:
        _, env = await seed(store)
        await store.set_webhook(env, "http://127.0.0.1:9/", "sealed")
        ids = {await store.queue_test_event(env) for _ in range(3)}
        now = now_ms()
        first = await store.claim_webhook_events(now, now + 60_000, 10)
        assert {e.id for e in first} == ids and {e.attempt for e in first} == {1}
        assert await store.claim_webhook_events(now, now + 60_000, 10) == []  # leased
        later = await store.claim_webhook_events(now + 60_001, FAR, 10)  # the lease ran out
        assert {e.attempt for e in later} == {2}
        done, retry, given_back = later
        await store.webhook_attempted([(done, attempt(done, 2, True), None)], 100)
        await store.webhook_attempted([(retry, attempt(retry, 2, False), FAR - 1)], 100)
        await store.release_webhook_events([given_back.id])
        again = await store.claim_webhook_events(now + 60_002, FAR, 10)
        assert [e.id for e in again] == [given_back.id]
        log, pending = await store.webhook_log(env, 10)
        assert pending == 2 and sorted(a.delivered for a in log) == [False, True]

    run(go())


def test_delivery_log_is_bounded(store: SQLStorage) -> None:  # noqa: F811
    async def go() -> None:
        _, env = await seed(store)
        await store.set_webhook(env, "http://127.0.0.1:9/", "sealed")
        await store.queue_test_event(env)
        (event,) = await store.claim_webhook_events(now_ms(), FAR, 10)
        for n in range(1, 8):
            await store.webhook_attempted([(event, attempt(event, n, False), FAR)], 5)
        log, _ = await store.webhook_log(env, 100)
        assert [a.attempt for a in log] == [7, 6, 5, 4, 3]

    run(go())


def test_two_claimers_on_one_database_share_nothing(store: SQLStorage) -> None:  # noqa: F811
    other: SQLStorage
    if isinstance(store, SQLiteStorage):
        other = SQLiteStorage(f"sqlite:///{store.path}")
    else:
        other = type(store)(store.url)  # type: ignore[call-arg, attr-defined]

    async def go() -> None:
        _, env = await seed(store)
        await store.set_webhook(env, "http://127.0.0.1:9/", "sealed")
        ids = {await store.queue_test_event(env) for _ in range(40)}
        await other.open()
        try:
            now = now_ms()
            claims = await asyncio.gather(
                *(s.claim_webhook_events(now, FAR, 7) for s in (store, other) for _ in range(4))
            )
        finally:
            await other.close()
        claimed = [e.id for batch in claims for e in batch]
        assert len(claimed) == len(set(claimed)) and set(claimed) <= ids
        assert len(claimed) == min(40, 8 * 7)

    run(go())


def test_outbox_held_to_its_bound_oldest_dropped(store: SQLStorage) -> None:  # noqa: F811
    """Past the bound, the oldest events go (leased ones too: their attempt is then recorded
    to no row), the newest stay, one log entry per pass says how many; every vote stays."""

    async def go() -> None:
        _, env = await seed(store)
        g = await store.create_group(env, "likes", "single", None, None)
        await store.set_webhook(env, "http://127.0.0.1:9/", "sealed", max_pending=4)
        for i in range(10):
            await store.apply_vote(env, g.id, f"i{i}", f"s:{i}", 1, None, {}, respond)
            await asyncio.sleep(0.002)  # event ids are time-ordered: a millisecond apart
        (leased,) = await store.claim_webhook_events(now_ms(), FAR, 1)  # the oldest
        assert await store.trim_webhook_outboxes(100, 50) != []
        assert await store.trim_webhook_outboxes(100, 50) == []  # at the bound: nothing to do
        kept = await store.claim_webhook_events(now_ms(), FAR, 10)
        assert sorted(e.vote_to or "" for e in kept) == ["i6", "i7", "i8", "i9"]
        await store.webhook_attempted([(leased, attempt(leased, 1, False), 0)], 50)
        log, pending = await store.webhook_log(env, 10)
        assert pending == 4  # the leased one's failed attempt brought nothing back
        drop = log[-1]
        assert (drop.type, drop.dropped, drop.attempt, drop.delivered) == ("discarded", 6, 0, False)
        assert drop.error and "6 oldest" in drop.error and "bound of 4" in drop.error
        totals = await store._run(lambda tx: tx.all("SELECT SUM(voters) FROM tallies"))
        assert int(totals[0][0]) == 10  # the votes themselves are all there

    run(go())


def test_outbox_bound_defaults_to_the_installations(store: SQLStorage) -> None:  # noqa: F811
    async def go() -> None:
        _, env = await seed(store)
        await store.set_webhook(env, "http://127.0.0.1:9/", "sealed")
        ids = sorted([str(await store.queue_test_event(env)) for _ in range(5)])
        (entry,) = await store.trim_webhook_outboxes(3, 50)
        assert (entry.dropped, entry.event_id) == (2, ids[1])  # the newest one dropped
        assert {e.id for e in await store.claim_webhook_events(now_ms(), FAR, 10)} == set(ids[2:])
        hook = await store.set_webhook(env, "http://127.0.0.1:9/", "sealed", max_pending=2)
        assert hook.max_pending == 2
        (entry,) = await store.trim_webhook_outboxes(3, 50)
        assert entry.dropped == 1

    run(go())
