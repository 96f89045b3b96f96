"""Webhooks: each vote of an environment with a webhook becomes a signed JSON POST to its URL.

The event is written to the outbox in the vote's own transaction (clickvote/storage/sql.py),
so a stored vote always has its event and the vote never waits on delivery. Each instance runs
a `Deliverer`: it claims due events (leased, so two instances don't send one at once), POSTs
each (clickvote/webhook_http.py, on connections kept open per destination), and records the
attempt in the delivery log; a failure is retried after a delay doubling from
`webhook_backoff` up to `webhook_backoff_max` (with jitter). Past its bound
(`webhook_max_pending`, or the webhook's own) an environment's oldest waiting events are
discarded, every 5 x `webhook_poll` seconds, and the delivery log says how many. Delivery is
at least once: a receiver may get an event twice (after a timeout, or an instance stopping
mid-send) and tells them apart by the event's `id`. A webhook with a `batch_size` above 1
gets the events due at once together, that many per POST at most (`batch_body`).

Signature: `X-ClickVote-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the
secret>`, `X-ClickVote-Timestamp` (Unix seconds), `X-ClickVote-Delivery` (the event's id).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import time
from datetime import UTC, datetime
from typing import Any

from clickvote import __version__, jsonfast
from clickvote import reactions as defs
from clickvote.config import Settings
from clickvote.security import Box, time_ordered_id
from clickvote.storage.base import (
    Attempted,
    Outage,
    Storage,
    StorageUnavailable,
    WebhookAttempt,
    WebhookEvent,
)
from clickvote.votes import reaction_totals, totals
from clickvote.webhook_http import Answer, Pool, post

log = logging.getLogger("clickvote.webhooks")
BATCH = 16  # events claimed at most per look at the outbox
IN_FLIGHT = 64  # events this instance sends at once
TRIM_EVERY = 5  # x webhook_poll: seconds between passes holding the outboxes to their bound
STOP_WAIT = 10.0  # seconds a stopping instance waits for a claim or record under way
SIGNATURE = "X-ClickVote-Signature"
TIMESTAMP = "X-ClickVote-Timestamp"
DELIVERY = "X-ClickVote-Delivery"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver checks (README): the signature of the timestamp and the body."""
    expected = sign(secret, int(headers[TIMESTAMP]), body)
    return hmac.compare_digest(expected, headers[SIGNATURE])


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _vote_facts(event: WebhookEvent) -> dict[str, Any]:
    group = event.group
    vote: dict[str, Any]
    if group is None:
        return {"group": None, "item": event.vote_to, "totals": None, "vote": None}
    if group.reactions is not None:
        total = reaction_totals(group, event.after, event.bit_counts)
        vote = {
            "value": defs.held(group.reactions, event.value),
            "previous": defs.held(group.reactions, event.previous),
        }
    else:
        total = totals(group, event.after)
        vote = {"value": event.value, "previous": event.previous}
    return {
        "group": {"id": group.id, "name": group.name, "type": group.type},
        "item": event.vote_to,
        "totals": total,
        "vote": vote,
    }


def body_of(event: WebhookEvent) -> bytes:
    """The event as JSON: the same bytes on every attempt."""
    facts = _vote_facts(event) if event.type == "vote" else {}
    return jsonfast.dumps(
        {
            "id": event.id,
            "type": event.type,
            "environment": {"id": event.env_id, "name": event.env_name},
            **{"group": None, "item": None, "totals": None, "vote": None, **facts},
            "time": iso(event.created_at),
        }
    ).encode()


def batch_body(events: list[WebhookEvent]) -> bytes:
    """Several events in one POST (a webhook whose `batch_size` is above 1, always this form):
    `{"type": "batch", "events": [each event's JSON as sent alone]}`."""
    return b'{"type":"batch","events":[' + b",".join(map(body_of, events)) + b"]}"


def headers_of(
    events: list[WebhookEvent], secret: str, body: bytes, now: int, batch: bool = False
) -> dict[str, str]:
    first = events[0]
    out = {
        "Content-Type": "application/json",
        "User-Agent": f"ClickVote-Webhook/{__version__}",
        SIGNATURE: sign(secret, now, body),
        TIMESTAMP: str(now),
        DELIVERY: first.id,  # a batch: its first event's (each event's id is in the body)
        "X-ClickVote-Event": "batch" if batch else first.type,
        "X-ClickVote-Attempt": str(max(e.attempt for e in events)),
    }
    if batch:
        out["X-ClickVote-Events"] = str(len(events))
    return out


def batches(events: list[WebhookEvent]) -> list[list[WebhookEvent]]:
    """The claimed events as POSTs: one each, or, for a webhook with a `batch_size` above 1,
    that many at most of its events together (in the order claimed)."""
    out: list[list[WebhookEvent]] = []
    open_: dict[tuple[str, str], list[WebhookEvent]] = {}
    for event in events:
        where = (event.env_id, event.url)
        batch = open_.get(where)
        if batch is None or len(batch) >= event.batch_size:
            batch = open_[where] = []
            out.append(batch)
        batch.append(event)
    return out


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds before the retry that follows failed attempt number `attempt` (1, 2, ...)."""
    delay = min(cap, base * 2 ** min(attempt - 1, 40))
    return delay * random.uniform(0.5, 1.0)


class Deliverer:
    """This instance's delivery loop over the shared outbox. Each event is sent by a task of its
    own (at most IN_FLIGHT at once), so a slow receiver holds up no other; the attempts that
    finished are recorded together, one transaction per turn of the loop."""

    def __init__(self, storage: Storage, box: Box, settings: Settings) -> None:
        self.storage, self.box, self.settings = storage, box, settings
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._in_flight: set[str] = set()  # claimed here, attempt not recorded yet
        self._finished: list[Attempted] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self.pool = Pool()  # connections kept open per destination (keep-alive)
        self._outage = Outage(log, "webhook delivery")

    @property
    def lease(self) -> float:
        """Seconds an instance holds a claimed event: time to resolve, connect and be answered,
        with room to spare."""
        return 4 * self.settings.webhook_timeout + 30

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        # The loop ends at its next turn, not in the middle of a claim (whose events would
        # stay leased); then what is being sent is given up.
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            _, late = await asyncio.wait({self._task}, timeout=STOP_WAIT)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            if late:
                log.warning("webhook delivery loop stopped mid-claim")
            self._task = None
        sending = list(self._sending)
        for task in sending:
            task.cancel()
        await asyncio.gather(*sending, return_exceptions=True)
        try:  # what finished is recorded; what was still being sent is due again at once
            await self._record()
            await self.storage.release_webhook_events(sorted(self._in_flight))
        except StorageUnavailable as exc:  # due again once their leases expire
            log.warning("webhook events not released on stopping: %s", exc)
        except Exception:  # pragma: no cover - the leases expire by themselves
            log.exception("could not record or release webhook events")
        self._in_flight.clear()
        self.pool.close()

    async def _run(self) -> None:
        trim_at = 0.0
        while not self._stopping:
            try:
                if time.monotonic() >= trim_at:
                    trim_at = time.monotonic() + TRIM_EVERY * self.settings.webhook_poll
                    await self._trim()
                await self._record()
                asked = min(IN_FLIGHT - len(self._sending), BATCH)
                claimed = await self._claim(asked) if asked > 0 else 0
                self._outage.ended()
            except StorageUnavailable as exc:  # restarting or hung: tried again next turn
                self._outage.began(exc)
                claimed = asked = 0
            except Exception:
                log.exception("webhook delivery failed; retrying")
                claimed = asked = 0
            if claimed < asked or asked <= 0:  # nothing more due now, or no room: wait
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.webhook_poll)
            self._wake.clear()

    async def _trim(self) -> None:
        s = self.settings
        for entry in await self.storage.trim_webhook_outboxes(
            s.webhook_max_pending, s.webhook_log_size
        ):
            log.warning("webhook outbox over its bound: %s", entry.error)

    async def _claim(self, limit: int) -> int:
        now = time.time()
        events = await self.storage.claim_webhook_events(
            int(now * 1000), int((now + self.lease) * 1000), limit
        )
        self._in_flight.update(event.id for event in events)
        for batch in batches(events):
            task = asyncio.create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return len(events)

    async def _send(self, events: list[WebhookEvent]) -> None:
        try:
            attempted = await self.deliver(events)
        except Exception as exc:  # retried once its lease runs out
            log.error("webhook event %s not delivered: %r", events[0].id, exc)
        else:  # appended after the await: _record may have swapped the list meanwhile
            self._finished.extend(attempted)
        self._wake.set()

    async def _record(self) -> None:
        done, self._finished = self._finished, []
        try:
            await self.storage.webhook_attempted(done, self.settings.webhook_log_size)
        except BaseException:
            self._finished[:0] = done  # recorded on the next turn
            raise
        self._in_flight.difference_update(event.id for event, _, _ in done)

    async def deliver(self, events: list[WebhookEvent]) -> list[Attempted]:
        """One attempt to deliver `events` (one POST: one event, or a batch), and when to try
        each again (None: delivered)."""
        started = time.monotonic()
        batch = events[0].batch_size > 1
        body = batch_body(events) if batch else body_of(events[0])
        secret = self.box.open_secret(events[0].secret_sealed)
        headers = headers_of(events, secret, body, int(time.time()), batch)
        s = self.settings
        answer = await post(
            events[0].url, body, headers, s.webhook_timeout, s.webhook_allow_private, self.pool
        )
        at = int(time.time() * 1000)
        took = int((time.monotonic() - started) * 1000)
        return [self._attempted(event, answer, at, took) for event in events]

    def _attempted(self, event: WebhookEvent, answer: Answer, at: int, took: int) -> Attempted:
        s = self.settings
        retry_at = None
        if not answer.ok:
            delay = backoff(event.attempt, s.webhook_backoff, s.webhook_backoff_max)
            retry_at = at + int(1000 * delay)
        attempt = WebhookAttempt(
            id=time_ordered_id(at),
            event_id=event.id,
            type=event.type,
            attempt=event.attempt,
            status=answer.status,
            error=answer.error,
            delivered=answer.ok,
            at=at,
            duration_ms=took,
        )
        return event, attempt, retry_at
