"""Webhooks in storage: each environment's configuration, the outbox of events to deliver
(a vote's row is written in the vote's own transaction: clickvote/storage/sql.py), the claims
that lease due rows to one delivering instance at a time, each environment's outbox held to its
bound (the oldest events past it discarded, in a pass of its own), and the bounded delivery
log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clickvote.security import time_ordered_id
from clickvote.storage.base import Attempted, Tally, Webhook, WebhookAttempt, WebhookEvent
from clickvote.storage.sql import GROUP_COLS, SQLStorage, Tx, _group, now_ms

HOOK_COLS = "env_id, url, secret_sealed, created_at, updated_at, max_pending, batch_size"
EVENT_COLS = (
    "o.id, o.type, o.env_id, e.name, o.group_id, o.vote_to, o.value, o.previous, o.voters, "
    "o.total, o.bit_counts, o.created_at, o.attempts, w.url, w.secret_sealed, w.batch_size"
)
LOG_COLS = "id, event_id, type, attempt, status, error, delivered, at, duration_ms, dropped"


def _hook(row: Sequence[Any]) -> Webhook:
    bound = None if row[5] is None else int(row[5])
    return Webhook(row[0], row[1], row[2], int(row[3]), int(row[4]), bound, int(row[6]))


def _attempt(row: Sequence[Any]) -> WebhookAttempt:
    status = None if row[4] is None else int(row[4])
    return WebhookAttempt(
        row[0],
        row[1],
        row[2],
        int(row[3]),
        status,
        row[5],
        bool(row[6]),
        int(row[7]),
        int(row[8]),
        int(row[9]),
    )


def _event(row: Sequence[Any], groups: dict[str, Any]) -> WebhookEvent:
    counts = tuple(int(n) for n in str(row[10]).split(",")) if row[10] else ()
    return WebhookEvent(
        id=row[0],
        type=row[1],
        env_id=row[2],
        env_name=row[3],
        group=groups.get(row[4]) if row[4] is not None else None,
        vote_to=row[5],
        value=int(row[6]),
        previous=int(row[7]),
        after=Tally(int(row[8]), int(row[9])),
        bit_counts=counts,
        created_at=int(row[11]),
        attempt=int(row[12]),
        url=row[13],
        secret_sealed=row[14],
        batch_size=int(row[15]),
    )


def discarded(bound: int, last: str, dropped: int) -> WebhookAttempt:
    """The delivery log's entry for a discard: `dropped` events up to `last`, past `bound`."""
    at = now_ms()
    return WebhookAttempt(
        id=time_ordered_id(at),
        event_id=last,  # the newest event discarded
        type="discarded",
        attempt=0,
        status=None,
        error=f"over the bound of {bound} waiting events: the {dropped} oldest discarded",
        delivered=False,
        at=at,
        duration_ms=0,
        dropped=dropped,
    )


class WebhookStorage(SQLStorage):
    """SQLStorage with the webhook tables (migration 0006)."""

    async def get_webhook(self, env_id: str) -> Webhook | None:
        row = await self._run(
            lambda tx: tx.one(f"SELECT {HOOK_COLS} FROM webhooks WHERE env_id = ?", env_id),
            write=False,
        )
        return _hook(row) if row else None

    async def set_webhook(
        self,
        env_id: str,
        url: str,
        secret_sealed: str,
        max_pending: int | None = None,
        batch_size: int = 1,
    ) -> Webhook:
        """Set the environment's webhook; `max_pending` None: the installation's bound."""

        def fn(tx: Tx) -> Webhook:
            ts = now_ms()
            tx.exec(
                f"INSERT INTO webhooks ({HOOK_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (env_id) DO UPDATE SET url = excluded.url, "
                "secret_sealed = excluded.secret_sealed, updated_at = excluded.updated_at, "
                "max_pending = excluded.max_pending, batch_size = excluded.batch_size",
                env_id,
                url,
                secret_sealed,
                ts,
                ts,
                max_pending,
                batch_size,
            )
            row = tx.one(f"SELECT {HOOK_COLS} FROM webhooks WHERE env_id = ?", env_id)
            assert row is not None
            return _hook(row)

        return await self._run(fn)

    async def clear_webhook(self, env_id: str) -> bool:
        """No webhook for the environment any more; its undelivered events are dropped."""

        def fn(tx: Tx) -> bool:
            tx.exec("DELETE FROM webhook_outbox WHERE env_id = ?", env_id)
            return tx.exec("DELETE FROM webhooks WHERE env_id = ?", env_id) > 0

        return await self._run(fn)

    async def queue_test_event(self, env_id: str) -> str | None:
        """A `test` event in the outbox (its id), None when the environment has no webhook."""

        def fn(tx: Tx) -> str | None:
            ts = now_ms()
            event_id = time_ordered_id(ts)
            n = tx.exec(
                "INSERT INTO webhook_outbox (id, env_id, type, created_at, next_at) "
                "SELECT ?, env_id, 'test', ?, ? FROM webhooks WHERE env_id = ?",
                event_id,
                ts,
                ts,
                env_id,
            )
            return event_id if n else None

        return await self._run(fn)

    async def claim_webhook_events(
        self, now: int, lease_until: int, limit: int
    ) -> list[WebhookEvent]:
        """Up to `limit` due events, leased to the caller until `lease_until` (one claimer at
        a time, across instances); each claim counts as an attempt."""

        def fn(tx: Tx) -> list[WebhookEvent]:
            self._tx_lock(tx, "clickvote:webhooks")
            rows = tx.all(
                f"SELECT {EVENT_COLS} FROM webhook_outbox o JOIN envs e ON e.id = o.env_id "
                "JOIN webhooks w ON w.env_id = o.env_id "
                "WHERE o.next_at <= ? AND o.lease_until <= ? ORDER BY o.next_at, o.id LIMIT ?",
                now,
                now,
                limit,
            )
            if not rows:
                return []
            marks = ", ".join("?" for _ in rows)
            ids = [r[0] for r in rows]
            tx.exec(
                f"UPDATE webhook_outbox SET lease_until = ?, attempts = attempts + 1 "
                f"WHERE id IN ({marks})",
                lease_until,
                *ids,
            )
            wanted = sorted({r[4] for r in rows if r[4] is not None})
            groups = {}
            if wanted:
                found = tx.all(
                    f"SELECT {GROUP_COLS} FROM vote_groups WHERE id IN "
                    f"({', '.join('?' for _ in wanted)})",
                    *wanted,
                )
                groups = {g.id: g for g in map(_group, found)}
            claimed = [(*r[:12], int(r[12]) + 1, *r[13:]) for r in rows]
            return [_event(r, groups) for r in claimed]

        return await self._run(fn)

    async def webhook_attempted(self, attempts: list[Attempted], keep: int) -> None:
        """Record attempts (the newest `keep` of each environment are kept), in one
        transaction; each event leaves the outbox, or waits until its retry time."""

        def fn(tx: Tx) -> None:
            for event, attempt, retry_at in attempts:
                self._attempted(tx, event, attempt, retry_at)
            for env_id in sorted({event.env_id for event, _, _ in attempts}):
                self._trim_log(tx, env_id, keep)

        if attempts:
            await self._run(fn)

    @staticmethod
    def _trim_log(tx: Tx, env_id: str, keep: int) -> None:
        tx.exec(
            "DELETE FROM webhook_log WHERE env_id = ? AND id NOT IN (SELECT id FROM "
            "webhook_log WHERE env_id = ? ORDER BY id DESC LIMIT ?)",
            env_id,
            env_id,
            keep,
        )

    @staticmethod
    def _attempted(
        tx: Tx, event: WebhookEvent, attempt: WebhookAttempt, retry_at: int | None
    ) -> None:
        if retry_at is None:
            tx.exec("DELETE FROM webhook_outbox WHERE id = ?", event.id)
        else:
            tx.exec(
                "UPDATE webhook_outbox SET next_at = ?, lease_until = 0 WHERE id = ?",
                retry_at,
                event.id,
            )
        WebhookStorage._log(tx, event.env_id, attempt)

    @staticmethod
    def _log(tx: Tx, env_id: str, a: WebhookAttempt) -> None:
        tx.exec(
            f"INSERT INTO webhook_log (env_id, {LOG_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            env_id,
            a.id,
            a.event_id,
            a.type,
            a.attempt,
            a.status,
            a.error,
            int(a.delivered),
            a.at,
            a.duration_ms,
            a.dropped,
        )

    async def release_webhook_events(self, ids: list[str]) -> None:
        """Give claimed events back (an instance stopping mid-delivery): due again at once."""
        if ids:
            marks = ", ".join("?" for _ in ids)
            await self._run(
                lambda tx: tx.exec(
                    f"UPDATE webhook_outbox SET lease_until = 0 WHERE id IN ({marks})", *ids
                )
            )

    async def trim_webhook_outboxes(self, default: int, keep: int) -> list[WebhookAttempt]:
        """Each environment's outbox held to its bound (its webhook's `max_pending`, else
        `default`): the oldest events past it are discarded, and each environment's discard is
        one "discarded" entry in its delivery log (which keeps its newest `keep`). A pass of
        its own: the votes' transactions only ever add their event. What goes is found in a
        read transaction; the write transaction only deletes up to the newest of it (events
        added meanwhile come after it)."""
        over = await self._run(lambda tx: self._past_bounds(tx, default), write=False)
        if not over:
            return []

        def fn(tx: Tx) -> list[WebhookAttempt]:
            self._tx_lock(tx, "clickvote:webhooks")  # no claim meanwhile
            done = []
            for env_id, bound, last in over:
                dropped = tx.exec(
                    "DELETE FROM webhook_outbox WHERE env_id = ? AND id <= ?", env_id, last
                )
                if dropped:
                    entry = discarded(bound, last, dropped)
                    self._log(tx, env_id, entry)
                    self._trim_log(tx, env_id, keep)
                    done.append(entry)
            return done

        return await self._run(fn)

    @staticmethod
    def _past_bounds(tx: Tx, default: int) -> list[tuple[str, int, str]]:
        """(environment, its bound, the newest of its events past it) where there are any:
        only webhooks whose bound is below the whole outbox's size are looked at, each by
        walking its newest events on the (env_id, id) index, its bound + 1 at most."""
        (total,) = tx.one("SELECT COUNT(*) FROM webhook_outbox") or (0,)
        out = []
        for env_id, bound in tx.all(
            "SELECT env_id, COALESCE(max_pending, ?) FROM webhooks "
            "WHERE COALESCE(max_pending, ?) < ? ORDER BY env_id",
            default,
            default,
            int(total),
        ):
            row = tx.one(
                "SELECT id FROM webhook_outbox WHERE env_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
                env_id,
                int(bound),
            )
            if row is not None:
                out.append((str(env_id), int(bound), str(row[0])))
        return out

    async def webhook_log(self, env_id: str, limit: int) -> tuple[list[WebhookAttempt], int]:
        """The environment's newest `limit` attempts, newest first, and its pending events."""

        def fn(tx: Tx) -> tuple[list[WebhookAttempt], int]:
            rows = tx.all(
                f"SELECT {LOG_COLS} FROM webhook_log WHERE env_id = ? ORDER BY id DESC LIMIT ?",
                env_id,
                limit,
            )
            pending = tx.one("SELECT COUNT(*) FROM webhook_outbox WHERE env_id = ?", env_id)
            return [_attempt(r) for r in rows], int(pending[0]) if pending else 0

        return await self._run(fn, write=False)
