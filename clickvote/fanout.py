"""Fan-out of real-time events between server instances.

Every Message has a kind, and each instance hands a message to the handler subscribed to its
kind (`subscribe`); a kind nobody here takes is dropped:
- EMIT (`publish()`): an event for the sockets of a room. clickvote/realtime.py emits it to its
  LOCAL sockets in `room`, minus the local sockets in `exclude_room`, minus `skip_sid` when the
  message originated on this instance. `seq` (0: none) orders the messages of one room: the
  receiver drops one older than the newest it delivered.
- INVALIDATE (`notify()`): environments or vote groups changed; clickvote/context.py empties its
  cache of them. No room, no payload.
Both reach every instance, this one included.

In-process (default) delivers directly. A Redis implementation (clickvote/fanout_redis.py)
publishes the JSON form of the Message on one channel and runs a subscriber loop delivering each
received message.

Rolling upgrades: instances of this version and of the one before (whose messages had no kind)
understand each other. A message without a kind is an EMIT, except one to OLD_INVALIDATE_ROOM,
which is how the version before sent an invalidation; an INVALIDATE is still sent to that room.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

EMIT, INVALIDATE = "emit", "invalidate"  # the kinds of message
# Where the version before kinds sent an invalidation (as an event no socket ever got: no
# socket joins this room). Read and written here only, for instances of that version.
OLD_INVALIDATE_ROOM = "ctl|invalidate"


@dataclass(frozen=True)
class Message:
    room: str
    event: str
    payload: Any
    skip_sid: list[str] = field(default_factory=list)
    exclude_room: str | None = None
    origin: str = ""
    seq: int = 0
    kind: str = EMIT

    def to_json(self) -> str:
        # the fields in their order, as dataclasses.asdict gives them, without its deep copy
        # of the payload (which cost more than the rest of a vote's fan-out)
        data = {f: getattr(self, f) for f in FIELDS}
        if self.kind == INVALIDATE:  # what an instance of the version before understands too
            data.update(room=OLD_INVALIDATE_ROOM, event=INVALIDATE)
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Message:
        data = json.loads(raw)
        room = str(data["room"])
        old = INVALIDATE if room == OLD_INVALIDATE_ROOM else EMIT  # sent without a kind
        return cls(
            room=room,
            event=str(data["event"]),
            payload=data.get("payload"),
            skip_sid=[str(s) for s in data.get("skip_sid") or []],
            exclude_room=data.get("exclude_room"),
            origin=str(data.get("origin") or ""),
            seq=int(data.get("seq") or 0),
            kind=str(data.get("kind") or old),
        )


FIELDS = tuple(f.name for f in fields(Message))

Deliver = Callable[[Message, bool], Awaitable[None]]  # (message, is_local_origin)


class Subscribers:
    """The handler of each kind of message on this instance."""

    def __init__(self) -> None:
        self.handlers: dict[str, Deliver] = {}

    async def deliver(self, msg: Message, local_origin: bool) -> None:
        handler = self.handlers.get(msg.kind)
        if handler is not None:  # else a kind this instance doesn't take (a newer version's)
            await handler(msg, local_origin)


class Fanout(Protocol):
    instance_id: str

    def subscribe(self, kind: str, handler: Deliver) -> None: ...
    async def start(self) -> None: ...
    async def publish(
        self,
        room: str,
        event: str,
        payload: Any,
        skip_sid: list[str] | None = None,
        exclude_room: str | None = None,
        seq: int = 0,
    ) -> None: ...
    async def notify(self, kind: str) -> None: ...
    async def close(self) -> None: ...


class Sender:
    """publish() and notify() of every fan-out: the Message they make, handed to `_send_all`
    (each implementation's way to this instance's subscribers and to the others)."""

    instance_id: str

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
        await self._send_all(msg)

    async def notify(self, kind: str) -> None:
        await self._send_all(Message("", "", None, origin=self.instance_id, kind=kind))

    async def _send_all(self, msg: Message) -> None:
        raise NotImplementedError


class InProcessFanout(Sender):
    """One instance: deliver immediately."""

    def __init__(self) -> None:
        self.instance_id = secrets.token_hex(8)
        self._subscribers = Subscribers()
        self._started = False

    def subscribe(self, kind: str, handler: Deliver) -> None:
        self._subscribers.handlers[kind] = handler

    async def start(self) -> None:
        self._started = True

    async def _send_all(self, msg: Message) -> None:
        if self._started:
            await self._subscribers.deliver(msg, True)

    async def close(self) -> None:
        self._started = False
