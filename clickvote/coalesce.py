"""Coalesced item broadcasts: per item, at most one totals update per window to its watchers,
always ending on the newest totals.

A hot item with N watchers and V votes/s would cost N x V frames/s; with a window W it costs at
most N / W. The first broadcast of a quiet item goes out at once; what comes within W of it
waits, and only the newest (highest seq) of those is sent when the window ends. The voter's own
update (its acknowledgement, and the user room that reaches the voter's other pages) is never
coalesced: it goes out at once and exact.

Where: on delivery, in each instance, not where a broadcast is published. Every vote's item
broadcast still crosses Redis (one small message per vote, not per watcher: the N x V cost is
the sockets' frames, which this removes). Holding broadcasts back before Redis would save that
traffic but break exactness across instances: instance A's held item update (seq 5) could reach
instance C after instance B's immediate user-room update of the same item (seq 7) had put the
seq-7 voter's page on C at 7, and take that page back to 5; B's item update for seq 7 excludes
that voter's pages, so nothing would correct it. Coalescing on delivery keeps each origin's
messages in their publish order, so a page sees totals only move forward, as with window 0:
a vote's item update is published before its voter's own, so whatever waits here when a
voter's own update arrives is at least as new as it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from clickvote.fanout import Message

Send = Callable[[Message, bool], None]  # (message, is_local_origin)
DEFAULT_WINDOW = 0.1  # seconds


class Coalescer:
    """`offer(msg)` sends an item broadcast now, or keeps it (newest seq wins) until its room's
    window ends. `newest(room)` is the highest seq waiting for `room` (0: none)."""

    def __init__(self, window: float, send: Send) -> None:
        self.window = window
        self._send = send
        self._pending: dict[str, tuple[Message, bool]] = {}
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._last: dict[str, float] = {}  # room -> when it last got a broadcast (oldest first)

    def newest(self, room: str) -> int:
        waiting = self._pending.get(room)
        return waiting[0].seq if waiting else 0

    def offer(self, msg: Message, local_origin: bool) -> None:
        room = msg.room
        waiting = self._pending.get(room)
        if waiting is not None:
            if msg.seq > waiting[0].seq:
                self._pending[room] = (msg, local_origin)
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._forget_quiet(now)
        last = self._last.get(room)
        if last is None or now - last >= self.window:
            self._sent(room, now)
            self._send(msg, local_origin)
            return
        self._pending[room] = (msg, local_origin)
        self._handles[room] = loop.call_at(last + self.window, self._flush, room)

    def _flush(self, room: str) -> None:
        self._handles.pop(room, None)
        waiting = self._pending.pop(room, None)
        if waiting is None:
            return
        self._sent(room, asyncio.get_running_loop().time())
        self._send(*waiting)

    def _sent(self, room: str, now: float) -> None:
        self._last.pop(room, None)  # re-inserted last: the dict stays oldest first
        self._last[room] = now

    def _forget_quiet(self, now: float) -> None:
        """Drop rooms whose window has passed (they would send at once anyway)."""
        while self._last:
            room, when = next(iter(self._last.items()))
            if now - when < self.window:
                break
            del self._last[room]

    def close(self) -> None:
        """Send what waits (the newest totals are never dropped), then stop."""
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
        pending, self._pending = self._pending, {}
        for msg, local_origin in pending.values():
            self._send(msg, local_origin)
