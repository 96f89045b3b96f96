"""Socket.IO v5 server on clickvote.engineio: the namespace "/", events, acknowledgements, rooms.

Packets (inside an engine.io message): 0 connect [auth], 1 disconnect, 2 event [ack id]
["name", args...], 3 ack id [args...], 4 connect error, 5/6 binary event/ack. What ClickVote
needs and no more: the namespace "/" only (a CONNECT to another gets CONNECT_ERROR "Invalid
namespace"), text events, acknowledgements with one argument, and no binary sending (a
client's binary event is handed to `fallback` and its attachments skipped).

As Socket.IO v5 says, a session's first packet must be a CONNECT, and a session that sends
none within `connect_timeout` seconds (45, socket.io's default; counted again after a
DISCONNECT) is closed; so is one that sends a packet this server cannot take: not Socket.IO,
an event whose data is not a non-empty array starting with its name, an ack without an id or
an array, an id over 15 digits, anything but a CONNECT while not connected to "/", a
CONNECT_ERROR, binary data no packet announced. A second CONNECT to "/" is answered with
CONNECT and the socket's sid (its auth is not looked at again). An ACK answers nothing here:
this server asks no client for one, so it is dropped.

An event's handler runs in its connection's reader, so one page's events are handled in the
order it sent them, and the acknowledgement is queued the moment the handler returns, before
anything else can be sent to that page. Handlers get (sid, args, wants_ack) and return the
acknowledgement's argument; an event nobody handles is acknowledged with no arguments. A handler
that raises (a fault of this server: the real-time handlers answer every client error) is
logged and its ack left unsent, so the client's own timeout reports it rather than an empty
ack that could read as success.

`emit` encodes a packet once, WebSocket frame included, and hands it to each recipient
(clickvote.engineio never waits on a socket: an idle WebSocket gets it written at once, others
queue it), so a broadcast to a thousand pages is one JSON encoding and one frame.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from clickvote import jsonfast
from clickvote.engineio import (
    MAX_PACKET_BYTES,
    MAX_QUEUE,
    MAX_SESSIONS_PER_IP,
    MESSAGE,
    EngineServer,
    Peer,
    Session,
    Shared,
)

log = logging.getLogger("clickvote.realtime")

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = "0123456"
NAMESPACE = "/"
CONNECT_TIMEOUT = 45.0  # seconds a session has to CONNECT to "/" (socket.io's connectTimeout)

Handler = Callable[[str, list[Any], bool], Awaitable[Any]]  # (sid, args, wants_ack)
# (sid, event name, binary, wants_ack): an event with no handler, or a binary one
FallbackHandler = Callable[[str, str, bool, bool], Awaitable[Any]]
ConnectHandler = Callable[[str, Peer, Any], bool]  # (sid, peer, auth) -> accepted
DisconnectHandler = Callable[[str], None]
RoomHandler = Callable[[str, bool], None]  # (room, present): its first socket here / last gone


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
    timer: asyncio.TimerHandle | None = None  # closes the session if no CONNECT comes in time


class SocketServer:
    def __init__(
        self,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_packet_bytes: int = MAX_PACKET_BYTES,
        connect_timeout: float = CONNECT_TIMEOUT,
        max_queue: int = MAX_QUEUE,
        max_sessions_per_ip: int = MAX_SESSIONS_PER_IP,
    ) -> None:
        self.engine = EngineServer(
            self, ping_interval, ping_timeout, max_packet_bytes, max_queue, max_sessions_per_ip
        )
        self.connect_timeout = connect_timeout
        self.handlers: dict[str, Handler] = {}
        self.on_connect: ConnectHandler | None = None
        self.on_disconnect: DisconnectHandler | None = None
        self.fallback: FallbackHandler | None = None
        self.on_room: RoomHandler | None = None
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
        members = self.rooms.get(room)
        if members is None:
            members = self.rooms[room] = {}
            if self.on_room is not None:
                self.on_room(room, True)
        members[sid] = conn

    def participants(self, room: str) -> Iterable[str]:
        return tuple(self.rooms.get(room, ()))

    def send(self, sid: str, event: str, data: Any) -> None:
        """An event to one socket."""
        conn = self.conns.get(sid)
        if conn is not None:
            conn.session.message(encode(EVENT, [event, data]))

    def emit(
        self, event: str, data: Any, room: str, skip: Iterable[str] = (), replace: bool = False
    ) -> int:
        """An event to every socket in `room` but those in `skip`; returns how many. With
        `replace`, it takes the place of the room's previous `replace` event still waiting
        for a socket (clickvote.engineio.Shared)."""
        members = self.rooms.get(room)
        if not members:
            return 0
        packet = Shared(MESSAGE + encode(EVENT, [event, data]), room if replace else None)
        skipped = set(skip)
        n = 0
        # a copy: a socket closed for a full queue leaves the room during the loop
        for sid, conn in tuple(members.items()):
            if sid not in skipped:
                conn.session.send(packet)
                n += 1
        return n

    # -- engine.io handler ------------------------------------------------------------------
    def on_open(self, session: Session) -> None:
        conn = Conn(secrets.token_urlsafe(15), session)
        self._by_session[session.sid] = conn
        self._await_connect(conn)

    def _await_connect(self, conn: Conn) -> None:
        loop = asyncio.get_running_loop()
        conn.timer = loop.call_later(self.connect_timeout, self._no_connect, conn)

    def _no_connect(self, conn: Conn) -> None:
        if not conn.connected:
            log.debug("socket %s: no CONNECT in time, closed", conn.sid)
            conn.session.close()

    def on_close(self, session: Session) -> None:
        conn = self._by_session.pop(session.sid, None)
        if conn is None:
            return
        if conn.timer is not None:
            conn.timer.cancel()
        if conn.connected:
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
                    if self.on_room is not None:
                        self.on_room(room, False)
        conn.rooms.clear()

    def _refuse(self, conn: Conn, why: str) -> None:
        """A packet the protocol forbids: the connection is closed (Socket.IO v5)."""
        log.debug("socket %s: %s, closed", conn.sid, why)
        conn.session.close()

    async def on_message(self, session: Session, data: str | bytes) -> None:
        conn = self._by_session.get(session.sid)
        if conn is None:
            return
        if isinstance(data, bytes):
            if conn.skip_binary:
                conn.skip_binary -= 1  # an attachment of a refused binary packet
            else:
                self._refuse(conn, "binary data no packet announced")
            return
        if conn.skip_binary:
            self._refuse(conn, "a packet where an attachment was due")
            return
        try:
            packet = decode(data)
        except BadPacket as exc:
            self._refuse(conn, str(exc))
            return
        kind = packet.type
        if kind == CONNECT:
            await self._connect(conn, packet)
        elif not conn.connected or packet.namespace != NAMESPACE:
            self._refuse(conn, "a packet before CONNECT")
        elif kind in (EVENT, BINARY_EVENT):
            args = packet.data
            if not isinstance(args, list) or not args or not isinstance(args[0], str):
                self._refuse(conn, "an event without a name")
                return
            conn.skip_binary = packet.attachments
            await self._event(conn, packet)
        elif kind in (ACK, BINARY_ACK):
            if packet.ack_id is None or not isinstance(packet.data, list):
                self._refuse(conn, "an ack without an id or arguments")
                return
            conn.skip_binary = packet.attachments  # no ack is awaited here: dropped
        elif kind == DISCONNECT:
            self._drop(conn)
            if self.on_disconnect is not None:
                self.on_disconnect(conn.sid)
            self._await_connect(conn)
        else:  # CONNECT_ERROR: the server's to send
            self._refuse(conn, "a CONNECT_ERROR from a client")

    async def _connect(self, conn: Conn, packet: Packet) -> None:
        if packet.namespace != NAMESPACE:
            conn.session.message(
                CONNECT_ERROR
                + packet.namespace
                + ","
                + jsonfast.dumps({"message": "Invalid namespace"})
            )
            return
        if packet.data is not None and not isinstance(packet.data, dict):
            self._refuse(conn, "CONNECT data that is not an object")
            return
        if conn.connected:  # again: the same socket, as it is
            conn.session.message(encode(CONNECT, {"sid": conn.sid}))
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
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        conn.connected = True
        self.conns[conn.sid] = conn
        conn.session.message(encode(CONNECT, {"sid": conn.sid}))

    async def _event(self, conn: Conn, packet: Packet) -> None:
        args = packet.data
        name, wants_ack = args[0], packet.ack_id is not None
        handler = self.handlers.get(name) if packet.type == EVENT else None
        try:
            if handler is not None:
                result = await handler(conn.sid, args[1:], wants_ack)
            elif self.fallback is not None:
                binary = packet.type == BINARY_EVENT
                result = await self.fallback(conn.sid, name, binary, wants_ack)
            else:
                result = None
        except Exception:
            log.exception("handler of %r failed", name)
            return
        if wants_ack and not conn.session.closed:
            conn.session.message(encode(ACK, [] if result is None else [result], packet.ack_id))
