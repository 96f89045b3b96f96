"""Redis pub/sub fan-out between ClickVote instances (redis-py asyncio, pure Python).

`publish()` delivers to this instance's sockets directly and queues the Message for Redis; it
never waits on Redis, so neither does a vote's acknowledgement. One publisher task sends the
queue in order: a failed send is retried at once on a fresh connection (a Redis restart leaves
the pooled one stale), then with a bounded backoff until Redis answers, so nothing queued is
lost while Redis is away or hung (the queue keeps the newest OUTBOX_MAX messages; receivers
drop a vote broadcast older than one they delivered, so a late or repeated one is harmless).
Every instance's subscriber delivers messages from OTHER instances (origin differs) to the
subscriber of their kind (clickvote/fanout.py); when it resubscribes it also drops this
instance's cached environments and groups (a notice may have been missed meanwhile). Each
outage is logged once as it starts and once when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from clickvote.fanout import INVALIDATE, Deliver, Message, Sender, Subscribers

log = logging.getLogger("clickvote.fanout")

CHANNEL = "clickvote:fanout"
BACKOFF_MIN = 0.1  # seconds
BACKOFF_MAX = 5.0
PUBLISH_TIMEOUT = 2.0
OP_TIMEOUT = 5.0  # socket timeout for publish/connect
OUTBOX_MAX = 10_000  # messages waiting for Redis (the oldest go first when it is full)
FAILURES = (RedisError, OSError, TimeoutError)


class RedisFanout(Sender):
    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        self.instance_id = secrets.token_hex(8)
        self.url = url
        self.channel = channel
        self._subscribers = Subscribers()
        self._redis: aioredis.Redis | None = None  # the subscriber's client
        self._pub: aioredis.Redis | None = None  # the publisher's client
        self._task: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._outbox: deque[Message] = deque(maxlen=OUTBOX_MAX)
        self._queued = asyncio.Event()
        self._healthy = False
        self._warned = False
        self._closed = False
        self._started = False  # delivers only between start() and close()
        self.connected = asyncio.Event()  # set while subscribed (tests wait on it)

    def _client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self.url,
            socket_timeout=OP_TIMEOUT,
            socket_connect_timeout=OP_TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # our own loops handle reconnection
            health_check_interval=10,
        )

    def subscribe(self, kind: str, handler: Deliver) -> None:
        self._subscribers.handlers[kind] = handler

    async def start(self) -> None:
        self._started = True
        self._closed = False
        self.connected = asyncio.Event()
        self._queued = asyncio.Event()
        self._redis, self._pub = self._client(), self._client()
        self._task = asyncio.create_task(self._subscriber(), name="clickvote-redis-fanout")
        self._publisher = asyncio.create_task(self._publish_loop(), name="clickvote-redis-pub")

    def _down(self, exc: BaseException, subscriber: bool = True) -> None:
        if subscriber:  # the subscriber loop owns the subscribed state
            self._healthy = False
            self.connected.clear()
        if not self._warned and not self._closed:
            self._warned = True
            log.warning(
                "Redis fan-out unavailable (%s): votes are still stored and acknowledged; "
                "live updates reach only this instance until Redis is back (retrying)",
                exc or type(exc).__name__,
            )

    def _restored(self) -> None:
        if self._warned:
            self._warned = False
            log.warning("Redis fan-out restored (%s)", self.url.rsplit("@", 1)[-1])

    async def _up(self) -> None:
        self._healthy = True
        self.connected.set()
        self._restored()
        # Messages from other instances sent while this one was not subscribed are gone,
        # an "environments or groups changed" notice among them: start from the database.
        await self._handle_local(Message("", "", None, kind=INVALIDATE))

    async def _subscriber(self) -> None:
        backoff = BACKOFF_MIN
        while not self._closed:
            pubsub = None
            try:
                assert self._redis is not None
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self.channel)
                await self._up()
                backoff = BACKOFF_MIN
                while not self._closed:
                    item = await pubsub.get_message(timeout=1.0)
                    if item is None or item.get("type") != "message":
                        continue
                    await self._handle(item.get("data"))
            except asyncio.CancelledError:
                raise
            except FAILURES as exc:
                self._down(exc)
            except Exception as exc:  # keep the loop alive whatever happens
                log.exception("Redis fan-out subscriber error")
                self._down(exc)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(pubsub.aclose(), OP_TIMEOUT)
            if self._closed:
                break
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _handle(self, raw: Any) -> None:
        try:
            msg = Message.from_json(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed fan-out message")
            return
        if msg.origin == self.instance_id:
            return
        await self._handle_local(msg, local=False)

    async def _handle_local(self, msg: Message, local: bool = True) -> None:
        if not self._started:
            return
        try:
            await self._subscribers.deliver(msg, local)
        except Exception:
            log.exception("fan-out delivery failed")

    async def _send_all(self, msg: Message) -> None:
        """`msg` to this instance's subscribers now, and to Redis for the others."""
        if self._started:
            await self._subscribers.deliver(msg, True)
        if self._closed:
            return
        self._outbox.append(msg)  # never waits: the publisher task sends it
        self._queued.set()

    async def _publish_loop(self) -> None:
        while not self._closed:
            if not self._outbox:
                self._queued.clear()
                await self._queued.wait()
                continue
            await self._send(self._outbox.popleft())

    async def _send(self, msg: Message) -> None:
        """Publish `msg`, retrying until Redis takes it (or the fan-out closes)."""
        raw, backoff, fresh = msg.to_json(), BACKOFF_MIN, False
        while not self._closed:
            try:
                assert self._pub is not None
                await asyncio.wait_for(self._pub.publish(self.channel, raw), PUBLISH_TIMEOUT)
            except FAILURES as exc:
                await self._renew_publisher()
                if not fresh:  # a stale pooled connection (Redis restarted): once more, now
                    fresh = True
                    continue
                self._down(exc, subscriber=False)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            else:
                if self._healthy:
                    self._restored()
                return

    async def _renew_publisher(self) -> None:
        old, self._pub = self._pub, self._client()
        if old is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.aclose(), OP_TIMEOUT)

    async def close(self) -> None:
        self._closed = True
        self._started = False
        self._queued.set()
        for task in (self._task, self._publisher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._publisher = None
        for client in (self._redis, self._pub):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._redis = self._pub = None
