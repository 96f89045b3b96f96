"""A worker's connection to the hub of `clickvote serve --workers N` (clickvote/hub.py), and
what goes through it: the fan-out between workers (HubFanout, the Fanout of clickvote/fanout.py),
token buckets, used proofs of work and IP + user-agent windows (HubBuckets, as
ratelimit.SharedBuckets) and the Engine.IO sessions per client address (HubLink.admit /
release).

The fan-out reaches only the workers with sockets in a message's room: the SocketServer tells
the link when a room gets its first local socket and loses its last (`interest`, wired in
clickvote/app.py), the link tells the hub (in the batch of the event loop's turn, and all of
them again whenever it connects), and a message for a room this worker has no socket in is
dropped unread (one still on its way after the last socket left).

The hub is the supervising process: when its connection ends, that process is gone, and the
worker stops itself (SIGTERM to itself: uvicorn's graceful shutdown), so no worker outlives it.
A question to the hub not answered within ASK_TIMEOUT falls back to this worker's own state.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import secrets
import signal
from typing import Any

from clickvote.fanout import EMIT, INVALIDATE, Deliver, Message, Sender, Subscribers
from clickvote.ratelimit import REFUSED, WINDOW_REFUSED, Bucket, Window

log = logging.getLogger("clickvote.hub")
ASK_TIMEOUT = 1.0  # seconds
LINGER = 0.002  # seconds a live update may wait for other lines to go to the hub with
LINE_MAX = 1024 * 1024
READ_SIZE = 256 * 1024


class HubLink:
    def __init__(self, path: str) -> None:
        self.path = path
        self.subscribers = Subscribers()
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._asked: dict[bytes, asyncio.Future[bytes]] = {}
        self._ids = itertools.count()
        self._closing = False
        self._out: list[bytes] = []  # lines for the hub, sent once per event loop turn
        self._flushing: asyncio.Handle | None = None  # the _flush to come, if any
        self.rooms: set[bytes] = set()  # rooms with local sockets, as room_line() spells them

    async def start(self) -> None:
        if self._writer is not None:
            return
        reader, self._writer = await asyncio.open_unix_connection(self.path)
        self._closing = False
        self._reader_task = asyncio.create_task(self._read(reader), name="clickvote-hub-link")
        for room in self.rooms:  # a new connection: the hub knows none of them yet
            self.send(b"J" + room + b"\n")

    def interest(self, room: str, present: bool) -> None:
        """`room` got its first local socket (`present`) or lost its last."""
        key = room_line(room)
        if present and key not in self.rooms:
            self.rooms.add(key)
            self.send(b"J" + key + b"\n")
        elif not present and key in self.rooms:
            self.rooms.discard(key)
            self.send(b"L" + key + b"\n", soon=False)

    def send(self, line: bytes, soon: bool = True) -> None:
        """Queue `line` for the hub: what one turn of the event loop sends goes in one write.
        A line not `soon` (a live update, a room left) may wait up to LINGER seconds for
        company: the next question to the hub, most often, under load (a write wakes the hub,
        and that cost more than anything else the fan-out did)."""
        if self._writer is None or self._writer.is_closing():
            return
        self._out.append(line)
        if self._flushing is None:
            loop = asyncio.get_running_loop()
            self._flushing = (
                loop.call_soon(self._flush) if soon else loop.call_later(LINGER, self._flush)
            )
        elif soon and isinstance(self._flushing, asyncio.TimerHandle):
            self._flushing.cancel()
            self._flushing = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flushing = None
        out, self._out = self._out, []
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(b"".join(out))

    async def ask(self, kind: bytes, args: list[Any]) -> bytes | None:
        """The hub's answer to a question, or None (no hub, or no answer in time)."""
        if self._writer is None or self._writer.is_closing():
            return None
        rid = str(next(self._ids)).encode()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes] = loop.create_future()
        self._asked[rid] = fut
        self.send(kind + rid + b" " + json.dumps(args).encode() + b"\n")
        timer = loop.call_later(ASK_TIMEOUT, _expire, fut)  # no task per question
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.cancelled() and not _current_cancelling():
                return None  # expired
            raise
        finally:
            timer.cancel()
            self._asked.pop(rid, None)

    async def admit(self, ip: str, limit: int) -> bool | None:
        """Whether one more session may open from `ip` (counted if so); None: ask locally."""
        answer = await self.ask(b"S", [ip, limit])
        return None if answer is None else answer == b"1"

    def release(self, ip: str) -> None:
        self.send(b"E" + json.dumps(ip).encode() + b"\n")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        rest = b""
        try:
            while chunk := await reader.read(READ_SIZE):
                *lines, rest = (rest + chunk).split(b"\n")
                if len(rest) > LINE_MAX:
                    raise ValueError("a line over LINE_MAX bytes")
                for line in lines:
                    if line[:1] == b"R":
                        rid, _, answer = line[1:].partition(b" ")
                        fut = self._asked.get(rid)
                        if fut is not None and not fut.done():
                            fut.set_result(answer)
                    elif line[:1] == b"M":
                        size, _, routed = line[1:].partition(b" ")
                        n = int(size)
                        if routed[:n] in self.rooms:  # else: its last socket here just left
                            await self._deliver(routed[n:])
                    elif line[:1] == b"F":
                        await self._deliver(line[1:])
        except (ConnectionError, ValueError) as exc:
            log.warning("connection to the hub failed (%s)", exc)
        if not self._closing:  # the supervising process is gone: stop, gracefully
            log.warning("the supervising process is gone: stopping")
            os.kill(os.getpid(), signal.SIGTERM)

    async def _deliver(self, raw: bytes) -> None:
        try:
            msg = Message.from_json(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed fan-out message")
            return
        try:
            await self.subscribers.deliver(msg, False)
        except Exception:
            log.exception("fan-out delivery failed")

    async def close(self) -> None:
        self._closing = True
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
        if self._flushing is not None:  # what is queued still goes
            self._flushing.cancel()
            self._flush()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._writer = self._reader_task = None


def room_line(room: str) -> bytes:
    """How the hub's lines name `room`: a JSON string (ASCII, so never a newline)."""
    return json.dumps(room).encode()


def _expire(fut: asyncio.Future[bytes]) -> None:
    if not fut.done():
        fut.cancel()


def _current_cancelling() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


class HubFanout(Sender):
    """Fan-out between the workers of one machine: delivered here at once, and through the
    hub to every other worker (an EMIT: every other worker with sockets in its room)."""

    def __init__(self, link: HubLink) -> None:
        self.instance_id = secrets.token_hex(8)
        self.link = link
        self._started = False

    def subscribe(self, kind: str, handler: Deliver) -> None:
        self.link.subscribers.handlers[kind] = handler

    async def start(self) -> None:
        await self.link.start()
        self._started = True
        # notices sent before this worker was connected are gone: start from the database
        await self.link.subscribers.deliver(Message("", "", None, kind=INVALIDATE), True)

    async def _send_all(self, msg: Message) -> None:
        if not self._started:
            return
        await self.link.subscribers.deliver(msg, True)
        body = msg.to_json().encode()
        if msg.kind == EMIT:
            room = room_line(msg.room)
            self.link.send(b"M%d " % len(room) + room + body + b"\n", soon=False)
        else:
            self.link.send(b"F" + body + b"\n")

    async def close(self) -> None:
        self._started = False
        await self.link.close()


class HubBuckets:
    """Token buckets (and the rest of ratelimit.SharedBuckets' interface) kept by the hub."""

    def __init__(self, link: HubLink) -> None:
        self.link = link

    async def take(self, key: str, burst: float, rate: float, cost: float) -> float | None:
        answer = await self.link.ask(b"T", [key, burst, rate, cost])
        return None if answer is None else float(answer)

    async def first_use(self, key: str, ttl: float) -> bool | None:
        """Whether `key` is marked used for the first time on any worker (for `ttl` s)."""
        answer = await self.link.ask(b"U", [key, ttl])
        return None if answer is None else answer == b"1"

    async def admit_voter(self, key: str, voter: str, window: float, limit: int) -> bool | None:
        """Whether `voter` may vote from `key` by the hub's window, shared by every worker."""
        answer = await self.link.ask(b"W", [key, voter, window, limit])
        return None if answer is None else answer == b"1"

    async def admit_and_take(self, window: Window, bucket: Bucket) -> float | None:
        """The hub's window, then the voter's bucket, in one question: WINDOW_REFUSED where
        the window refuses (no token taken), else the bucket's wait."""
        answer = await self.link.ask(b"V", [*window, *bucket])
        if answer is None:
            return None
        return WINDOW_REFUSED if answer == REFUSED.encode() else float(answer)

    async def close(self) -> None:
        return None
