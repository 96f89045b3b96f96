"""Fan-out of real-time events between server instances.

`publish()` sends a Message to every instance (this one included); each instance's subscriber
hands it to `deliver`, which emits to its LOCAL sockets in `room`, minus the local sockets in
`exclude_room`, minus `skip_sid` when the message originated on this instance. `seq` (0: none)
orders the messages of one room: the receiver drops one older than the newest it delivered.

In-process (default) delivers directly. A Redis implementation publishes the JSON form of the
Message on one channel and runs a subscriber loop calling `deliver` for each received message.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

# Room of the "environments or groups changed" notice between instances (no socket ever joins
# it; Realtime.deliver empties the cache of environments and groups on it).
INVALIDATE_ROOM = "ctl|invalidate"


@dataclass(frozen=True)
class Message:
    room: str
    event: str
    payload: Any
    skip_sid: list[str] = field(default_factory=list)
    exclude_room: str | None = None
    origin: str = ""
    seq: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Message:
        data = json.loads(raw)
        return cls(
            room=str(data["room"]),
            event=str(data["event"]),
            payload=data.get("payload"),
            skip_sid=[str(s) for s in data.get("skip_sid") or []],
            exclude_room=data.get("exclude_room"),
            origin=str(data.get("origin") or ""),
            seq=int(data.get("seq") or 0),
        )


Deliver = Callable[[Message, bool], Awaitable[None]]  # (message, is_local_origin)


class Fanout(Protocol):
    instance_id: str

    async def start(self, deliver: Deliver) -> None: ...
    async def publish(
        self,
        room: str,
        event: str,
        payload: Any,
        skip_sid: list[str] | None = None,
        exclude_room: str | None = None,
        seq: int = 0,
    ) -> None: ...
    async def close(self) -> None: ...


class InProcessFanout:
    """One instance: deliver immediately."""

    def __init__(self) -> None:
        self.instance_id = secrets.token_hex(8)
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def publish(
        self,
        room: str,
        event: str,
        payload: Any,
        skip_sid: list[str] | None = None,
        exclude_room: str | None = None,
        seq: int = 0,
    ) -> None:
        if self._deliver is None:
            return
        msg = Message(
            room, event, payload, list(skip_sid or []), exclude_room, self.instance_id, seq
        )
        await self._deliver(msg, True)

    async def close(self) -> None:
        self._deliver = None


def make_fanout(redis_url: str) -> Fanout:
    if not redis_url:
        return InProcessFanout()
    try:
        from clickvote.fanout_redis import RedisFanout
    except ImportError as exc:  # pragma: no cover - redis-py missing
        raise ValueError(f"Redis fan-out needs redis-py ({exc})") from exc
    return RedisFanout(redis_url)
