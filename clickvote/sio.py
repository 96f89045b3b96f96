"""Socket.IO v5 server on clickvote.engineio: the namespace "/", events, acknowledgements, rooms.

Packets (inside an engine.io message): 0 connect [auth], 1 disconnect, 2 event [ack id]
["name", args...], 3 ack id [args...], 4 connect error, 5/6 binary event/ack (refused: the
attachments that follow are skipped). Only "/" exists; another namespace gets a connect error.

An event's handler runs in its connection's reader, so one page's events are handled in the
order it sent them, and the acknowledgement is queued the moment the handler returns, before
anything else can be sent to that page. Handlers get (sid, args, wants_ack) and return the
acknowledgement's argument; one that raises is logged and answered with nothing.

`emit` encodes a packet once and queues it on each recipient (clickvote.engineio never waits
on a socket), so a broadcast to a thousand pages is one JSON encoding and a thousand appends.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from clickvote import jsonfast
from clickvote.engineio import MAX_PAYLOAD, EngineServer, Peer, Session

log = logging.getLogger("clickvote.realtime")

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = "0123456"
NAMESPACE = "/"

Handler = Callable[[str, list[Any], bool], Awaitable[Any]]  # (sid, args, wants_ack)
# (sid, event name, binary, wants_ack): an event with no handler, or a binary one
FallbackHandler = Callable[[str, str, bool, bool], Awaitable[Any]]
ConnectHandler = Callable[[str, Peer, Any], bool]  # (sid, peer, auth) -> accepted
DisconnectHandler = Callable[[str], None]


class BadPacket(ValueError):
    pass


@dataclass
class Packet:
    type: str
    namespace: str = NAMESPACE
    ack_id: int | None = None
    data: Any = None
    attachments: int = 0


def decode(text: str) -> Packet:
    """One Socket.IO packet from its text form; BadPacket if it is not one."""
    if not text or text[0] not in "0123456":
        raise BadPacket("unknown packet type")
    kind, i, n = text[0], 1, len(text)
    attachments = 0
    if kind in (BINARY_EVENT, BINARY_ACK):
        j = text.find("-", i)
        if j <= i or not text[i:j].isdigit():
            raise BadPacket("binary packet without an attachment count")
        attachments, i = int(text[i:j]), j + 1
    namespace = NAMESPACE
    if i < n and text[i] == "/":
        j = text.find(",", i)
        if j < 0:
            namespace, i = text[i:], n
        else:
            namespace, i = text[i:j], j + 1
    start = i
    while i < n and "0" <= text[i] <= "9":
        i += 1
    ack_id = int(text[start:i]) if i > start else None
    if ack_id is not None and i - start > 15:
        raise BadPacket("ack id too long")
    data: Any = None
    if i < n:
        try:
            data = jsonfast.loads(text[i:])
        except (ValueError, RecursionError) as exc:
            raise BadPacket("packet data is not JSON") from exc
    return Packet(kind, namespace, ack_id, data, attachments)


def encode(kind: str, data: Any = None, ack_id: int | None = None) -> str:
    """The text form of a packet on "/" (how every packet of this server is addressed)."""
    out = kind if ack_id is None else kind + str(ack_id)
    return out if data is None else out + jsonfast.dumps(data)


@dataclass(eq=False)
class Conn:
    """One Socket.IO socket (on "/") over one engine.io session."""

    sid: str
    session: Session
    connected: bool = False
    rooms: set[str] = field(default_factory=set)
    skip_binary: int = 0  # attachments of a refused binary packet still to come


class SocketServer:
    def __init__(
        self,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_payload: int = MAX_PAYLOAD,
    ) -> None:
        self.engine = EngineServer(self, ping_interval, ping_timeout, max_payload)
        self.handlers: dict[str, Handler] = {}
        self.on_connect: ConnectHandler | None = None
        self.on_disconnect: DisconnectHandler | None = None
        self.fallback: FallbackHandler | None = None
        self.conns: dict[str, Conn] = {}  # socket sid -> connection
        self._by_session: dict[str, Conn] = {}  # engine.io sid -> connection
        self.rooms: dict[str, dict[str, Conn]] = {}

    def on(self, event: str, handler: Handler) -> None:
        self.handlers[event] = handler

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """ASGI; served alone (tests), it answers the lifespan protocol itself."""
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await self.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await self.engine(scope, receive, send)

    async def close(self) -> None:
        await self.engine.close()

    # -- rooms and sending ------------------------------------------------------------------
    def enter_room(self, sid: str, room: str) -> None:
        conn = self.conns.get(sid)
        if conn is None or room in conn.rooms:
            return
        conn.rooms.add(room)
        self.rooms.setdefault(room, {})[sid] = conn

    def participants(self, room: str) -> Iterable[str]:
        return tuple(self.rooms.get(room, ()))

    def send(self, sid: str, event: str, data: Any) -> None:
        """An event to one socket."""
        conn = self.conns.get(sid)
        if conn is not None:
            conn.session.message(encode(EVENT, [event, data]))

    def emit(self, event: str, data: Any, room: str, skip: Iterable[str] = ()) -> int:
        """An event to every socket in `room` but those in `skip`; returns how many."""
        members = self.rooms.get(room)
        if not members:
            return 0
        packet = encode(EVENT, [event, data])
        skipped = set(skip)
        n = 0
        for sid, conn in members.items():
            if sid not in skipped:
                conn.session.message(packet)
                n += 1
        return n

    # -- engine.io handler ------------------------------------------------------------------
    def on_open(self, session: Session) -> None:
        conn = Conn(secrets.token_urlsafe(15), session)
        self._by_session[session.sid] = conn

    def on_close(self, session: Session) -> None:
        conn = self._by_session.pop(session.sid, None)
        if conn is not None and conn.connected:
            self._drop(conn)
            if self.on_disconnect is not None:
                self.on_disconnect(conn.sid)

    def _drop(self, conn: Conn) -> None:
        conn.connected = False
        self.conns.pop(conn.sid, None)
        for room in conn.rooms:
            members = self.rooms.get(room)
            if members is not None:
                members.pop(conn.sid, None)
                if not members:
                    del self.rooms[room]
        conn.rooms.clear()

    async def on_message(self, session: Session, data: str | bytes) -> None:
        conn = self._by_session.get(session.sid)
        if conn is None:
            return
        if isinstance(data, bytes):
            if conn.skip_binary:
                conn.skip_binary -= 1
            return  # no binary events here: a stray attachment is dropped
        try:
            packet = decode(data)
        except BadPacket as exc:
            log.debug("socket %s: %s", conn.sid, exc)
            return
        if packet.type == EVENT:
            if conn.connected and packet.namespace == NAMESPACE:
                await self._event(conn, packet)
        elif packet.type == CONNECT:
            await self._connect(conn, packet)
        elif packet.type == DISCONNECT:
            if conn.connected and packet.namespace == NAMESPACE:
                self._drop(conn)
                if self.on_disconnect is not None:
                    self.on_disconnect(conn.sid)
        elif packet.type in (BINARY_EVENT, BINARY_ACK):
            conn.skip_binary = packet.attachments
            if packet.type == BINARY_EVENT and conn.connected:
                await self._event(conn, packet)
        # ACK: this server asks clients for none; CONNECT_ERROR is server -> client only

    async def _connect(self, conn: Conn, packet: Packet) -> None:
        if packet.namespace != NAMESPACE:
            conn.session.message(
                CONNECT_ERROR
                + packet.namespace
                + ","
                + jsonfast.dumps({"message": "Invalid namespace"})
            )
            return
        if conn.connected:
            return
        ok = True
        if self.on_connect is not None:
            try:
                ok = self.on_connect(conn.sid, conn.session.peer, packet.data)
            except Exception:
                log.exception("connect handler failed")
                ok = False
        if not ok:
            conn.session.message(
                encode(CONNECT_ERROR, {"message": "Connection rejected by server"})
            )
            return
        conn.connected = True
        self.conns[conn.sid] = conn
        conn.session.message(encode(CONNECT, {"sid": conn.sid}))

    async def _event(self, conn: Conn, packet: Packet) -> None:
        args = packet.data
        if not isinstance(args, list) or not args or not isinstance(args[0], str):
            log.debug("socket %s: event without a name", conn.sid)
            return
        name, wants_ack = args[0], packet.ack_id is not None
        handler = self.handlers.get(name) if packet.type == EVENT else None
        try:
            if handler is not None:
                result = await handler(conn.sid, args[1:], wants_ack)
            elif self.fallback is not None:
                binary = packet.type == BINARY_EVENT
                result = await self.fallback(conn.sid, name, binary, wants_ack)
            else:
                return
        except Exception:
            log.exception("handler of %r failed", name)
            return
        if wants_ack and not conn.session.closed:
            conn.session.message(encode(ACK, [] if result is None else [result], packet.ack_id))
