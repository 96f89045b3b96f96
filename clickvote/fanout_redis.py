"""Redis pub/sub fan-out between ClickVote instances (redis-py asyncio, pure Python).

`publish()` delivers to this instance's sockets directly, then publishes the Message on one
channel; every instance's subscriber delivers messages from OTHER instances (origin differs).
So local sockets never depend on Redis. When Redis is unreachable, votes are still stored and
acknowledged: publishing is skipped (other instances miss those live updates; their clients get
current totals on their next get-votes/vote), one warning is logged, and the subscriber loop
reconnects with a bounded exponential backoff; one info line is logged when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from clickvote.fanout import Deliver, Message

log = logging.getLogger("clickvote.fanout")

CHANNEL = "clickvote:fanout"
BACKOFF_MIN = 0.1  # seconds
BACKOFF_MAX = 5.0
PUBLISH_TIMEOUT = 2.0
OP_TIMEOUT = 5.0  # socket timeout for publish/connect


class RedisFanout:
    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        self.instance_id = secrets.token_hex(8)
        self.url = url
        self.channel = channel
        self._deliver: Deliver | None = None
        self._redis: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._healthy = False
        self._warned = False
        self._closed = False
        self.connected = asyncio.Event()  # set while subscribed (tests wait on it)

    def _client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self.url,
            socket_timeout=OP_TIMEOUT,
            socket_connect_timeout=OP_TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # our own loop handles reconnection
            health_check_interval=10,
        )

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._closed = False
        self.connected = asyncio.Event()
        self._redis = self._client()
        self._task = asyncio.create_task(self._subscriber(), name="clickvote-redis-fanout")

    def _down(self, exc: BaseException, subscriber: bool = True) -> None:
        if subscriber:  # the subscriber loop owns the state; publish failures only warn
            self._healthy = False
            self.connected.clear()
        if not self._warned and not self._closed:
            self._warned = True
            log.warning(
                "Redis fan-out unavailable (%s): votes are still stored and acknowledged; "
                "live updates reach only this instance until Redis is back (retrying)",
                exc or type(exc).__name__,
            )

    def _up(self) -> None:
        self._healthy = True
        self.connected.set()
        if self._warned:
            self._warned = False
            log.warning("Redis fan-out restored (%s)", self.url.rsplit("@", 1)[-1])

    async def _subscriber(self) -> None:
        backoff = BACKOFF_MIN
        while not self._closed:
            pubsub = None
            try:
                assert self._redis is not None
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self.channel)
                self._up()
                backoff = BACKOFF_MIN
                while not self._closed:
                    item = await pubsub.get_message(timeout=1.0)
                    if item is None or item.get("type") != "message":
                        continue
                    await self._handle(item.get("data"))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._down(exc)
            except Exception as exc:  # keep the loop alive whatever happens
                log.exception("Redis fan-out subscriber error")
                self._down(exc)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
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
        if msg.origin == self.instance_id or self._deliver is None:
            return
        try:
            await self._deliver(msg, False)
        except Exception:
            log.exception("fan-out delivery failed")

    async def publish(
        self,
        room: str,
        event: str,
        payload: Any,
        skip_sid: list[str] | None = None,
        exclude_room: str | None = None,
        seq: int = 0,
    ) -> None:
        msg = Message(
            room, event, payload, list(skip_sid or []), exclude_room, self.instance_id, seq
        )
        if self._deliver is not None:
            await self._deliver(msg, True)
        if not self._healthy or self._redis is None:
            return  # the subscriber loop is reconnecting; never fail a vote on Redis
        try:
            await asyncio.wait_for(
                self._redis.publish(self.channel, msg.to_json()), PUBLISH_TIMEOUT
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc, subscriber=False)

    async def close(self) -> None:
        self._closed = True
        self._deliver = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        client, self._redis = self._redis, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()
