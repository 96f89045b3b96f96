"""Engine.IO v4 server on ASGI: the transport under Socket.IO (clickvote/sio.py).

What socket.io-client 4 (and so the published @clickvote/react) and python-socketio's client
speak: an HTTP long-polling session that may upgrade to a WebSocket (probe, noop, upgrade), or
a WebSocket from the start; packets 0 open, 1 close, 2 ping, 3 pong, 4 message, 5 upgrade,
6 noop; polling payloads joined by the record separator \\x1e, binary ones as "b" + base64.
The server pings every `ping_interval` seconds; a session whose pong has not come
`ping_timeout` seconds after its ping is closed then, by a timer of its own. ClickVote sends
text only; a client's binary messages reach the layer above as bytes.

What breaks the protocol (Engine.IO v4 as socket.io publishes it) closes the session: a second
GET or POST while one is in flight on a long-polling session (HTTP 400), a packet of no known
type, bad base64 or undecodable UTF-8 (HTTP 400 on long-polling; the WebSocket is closed), a
packet or polling request over `max_packet_bytes` bytes, the limit the handshake announces (HTTP
413; WebSocket close). A second WebSocket on one session is accepted and closed at once, as
the reference server does. Polling requests after an upgrade get HTTP 400.

Limits of this server: `max_sessions_per_ip` sessions at once per client address (one more
handshake gets HTTP 429 `{code: 4, message}`; with `clickvote serve --workers N`, counted for
all the workers by their hub, `gate`), and `max_queue` packets waiting for one client:
a client that takes them slower than they come is closed, so what it does not read cannot
grow without limit.

Sending never waits: `Session.send` queues the packet. A WebSocket session has one writer task
that drains its queue, so one slow client holds up nobody else; a polling session's queue goes
out with the next GET. Each session's packets leave in the order they were queued.

A broadcast's packet (`Shared`) is encoded once for all its sessions, WebSocket frame included
(a server's frames are unmasked: the same bytes fit every socket). On a WebSocket session whose
queue is empty, with no write in progress and its transport below its high-water mark
(clickvote.wsfast's `write_now`), it is written at once, from the broadcast, with no task
woken; else it is queued as any packet. A shared packet with a `key` (an item's totals)
replaces the one of the same key still waiting in the queue: the older is dropped and the newer
goes last, so a client that reads slowly gets the newest totals, not every one, and never an
older after a newer; other packets are never dropped or reordered.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

from clickvote import cors, jsonfast
from clickvote.wsframe import text_frame

log = logging.getLogger("clickvote.engineio")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
SendTexts = Callable[[list[str | bytes]], Awaitable[None]]  # clickvote.wsfast's direct path
WriteNow = Callable[[bytes], bool]  # clickvote.wsfast: a frame written at once, if it can be
ReceiveBatch = Callable[[], Awaitable[list[dict[str, Any]]]]

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = "0123456"
IGNORED = (OPEN, UPGRADE, NOOP)  # valid from a client, nothing to do (an upgrade has its own)
SEPARATOR = "\x1e"
MAX_PACKET_BYTES = 64 * 1024  # bytes of one packet or polling request (the handshake's maxPayload)
MAX_QUEUE = 1000  # packets waiting for one client before it is closed as too slow
MAX_SESSIONS_PER_IP = 256  # sessions open at once from one client address
EXTENSION = "clickvote.ws"  # the ASGI scope extension of clickvote.wsfast's direct path
CLOSE_WAIT = 1.0  # seconds a WebSocket close frame may wait for a client that reads nothing


@dataclass(frozen=True)
class Peer:
    """Who opened a session: what the handshake request said."""

    ip: str
    user_agent: str | None
    referrer: str | None


class Gate(Protocol):
    """Sessions per client address counted across processes (clickvote/hublink.py)."""

    async def admit(self, ip: str, limit: int) -> bool | None: ...  # None: count locally
    def release(self, ip: str) -> None: ...


class Shared:
    """One packet for many sessions (a broadcast): its text, its WebSocket frame (built once,
    when first needed) and its `key` (not None: a newer packet of the same key replaces it
    while it waits in a session's queue)."""

    __slots__ = ("_frame", "key", "text")

    def __init__(self, text: str, key: str | None = None) -> None:
        self.text, self.key = text, key
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = text_frame(self.text)
        return self._frame


Queued = str | Shared


def _text(packet: Queued) -> str:
    return packet if isinstance(packet, str) else packet.text


def _frame_or_text(packet: Queued) -> str | bytes:
    return packet if isinstance(packet, str) else packet.frame


class Handler(Protocol):
    """The layer above (Socket.IO): told of every session and of every message in it."""

    def on_open(self, session: Session) -> None: ...
    async def on_message(self, session: Session, data: str | bytes) -> None: ...
    def on_close(self, session: Session) -> None: ...


class Session:
    __slots__ = (
        "awaiting_pong",
        "busy",
        "closed",
        "direct",
        "keyed",
        "outbox",
        "peer",
        "poll_waiting",
        "post_busy",
        "reader",
        "receiving",
        "server",
        "sid",
        "timer",
        "transport",
        "upgrading",
        "wake",
        "writer",
    )

    def __init__(self, server: EngineServer, sid: str, peer: Peer, transport: str) -> None:
        self.server, self.sid, self.peer, self.transport = server, sid, peer, transport
        self.outbox: list[Queued] = []  # engine.io packets not yet sent
        self.keyed: dict[str, Shared] = {}  # the outbox's packets that have a key, by key
        self.direct: WriteNow | None = None  # a WebSocket's write_now (clickvote.wsfast)
        self.busy = False  # the writer has packets in hand: nothing may overtake them
        self.wake = asyncio.Event()  # set when outbox gets something (or the session closes)
        self.closed = False
        self.upgrading = False
        self.poll_waiting = False
        self.post_busy = False
        self.writer: asyncio.Task[None] | None = None
        self.reader: asyncio.Task[Any] | None = None  # the WebSocket's reader
        self.receiving = False  # the reader waits for the client (close() may wake it)
        self.awaiting_pong = False
        self.timer = asyncio.get_running_loop().call_later(server.ping_interval, self._ping)

    def send(self, packet: Queued) -> None:
        """Queue one engine.io packet (e.g. "4" + a socket.io packet); a shared one may be
        written at once, or replace an older one of its key (see the module's doc). Never
        waits."""
        if self.closed:
            return
        outbox = self.outbox
        if isinstance(packet, Shared):
            if not outbox:
                if self.direct is not None and not self.busy and self.direct(packet.frame):
                    return
            elif packet.key is not None:
                older = self.keyed.pop(packet.key, None)
                if older is not None:
                    outbox.remove(older)
            if packet.key is not None:
                self.keyed[packet.key] = packet
        if len(outbox) >= self.server.max_queue:
            log.info("session %s: %d packets not taken, closed", self.sid, len(outbox))
            self.take()
            self.close()
            return
        outbox.append(packet)
        if len(outbox) == 1:
            self.wake.set()

    def take(self) -> list[Queued]:
        """What waits in the outbox, taken out of it."""
        batch, self.outbox = self.outbox, []
        if self.keyed:
            self.keyed.clear()
        return batch

    def message(self, text: str) -> None:
        self.send(MESSAGE + text)

    def close(self) -> None:
        """End the session (idempotent): the layer above hears of it once."""
        if self.closed:
            return
        self.closed = True
        self.timer.cancel()
        self.wake.set()
        self.server.forget(self)
        if self.reader is not None and self.receiving:
            self.reader.cancel()  # the reader ends the WebSocket (see EngineServer._read)
        self.server.handler.on_close(self)

    # -- heartbeat ----------------------------------------------------------------------
    def _ping(self) -> None:
        self.awaiting_pong = True
        self.send(PING)
        if not self.closed:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.server.ping_timeout, self._no_pong)

    def _no_pong(self) -> None:
        log.debug("session %s: no pong, closed", self.sid)
        self.close()

    def pong(self) -> None:
        if self.awaiting_pong and not self.closed:
            self.awaiting_pong = False
            self.timer.cancel()
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.server.ping_interval, self._ping)

    # -- websocket writer ----------------------------------------------------------------
    def start_writer(
        self, ws_send: Send, send_texts: SendTexts | None = None, direct: WriteNow | None = None
    ) -> None:
        self.transport = "websocket"
        self.direct = direct if send_texts is not None else None
        self.writer = asyncio.create_task(self._write_loop(ws_send, send_texts))

    async def _write_loop(self, ws_send: Send, send_texts: SendTexts | None) -> None:
        try:
            while not self.closed:
                if not self.outbox:
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                batch = self.take()
                self.busy = True
                try:
                    if send_texts is not None:  # all queued packets in one write (wsfast)
                        await send_texts(list(map(_frame_or_text, batch)))
                        continue
                    for packet in batch:
                        await ws_send({"type": "websocket.send", "text": _text(packet)})
                finally:
                    self.busy = False
        except Exception:  # the connection went away under us: the reader sees it too
            self.close()


class EngineServer:
    """The ASGI app for /socket.io/ (HTTP long-polling and WebSocket)."""

    def __init__(
        self,
        handler: Handler,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_packet_bytes: int = MAX_PACKET_BYTES,
        max_queue: int = MAX_QUEUE,
        max_sessions_per_ip: int = MAX_SESSIONS_PER_IP,
    ) -> None:
        self.handler = handler
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.max_packet_bytes = max_packet_bytes
        self.max_queue = max_queue
        self.max_sessions_per_ip = max_sessions_per_ip
        self.sessions: dict[str, Session] = {}
        self.per_ip: dict[str, int] = {}  # client address -> sessions open
        self.sid_prefix = ""  # "<worker>." for worker <worker> of `clickvote serve --workers N`
        self.gate: Gate | None = None  # the workers' shared count of sessions per address
        self.gated: set[str] = set()  # sessions counted by the gate

    # -- lifecycle ------------------------------------------------------------------------
    async def close(self) -> None:
        for s in list(self.sessions.values()):
            s.close()

    async def _admit(self, peer: Peer) -> tuple[bool, bool]:
        """(may a session open from `peer`'s address, is it counted by the gate)"""
        if self.gate is not None:
            allowed = await self.gate.admit(peer.ip, self.max_sessions_per_ip)
            if allowed is not None:
                return allowed, allowed
        return self.per_ip.get(peer.ip, 0) < self.max_sessions_per_ip, False

    def _open(self, peer: Peer, transport: str, gated: bool = False) -> Session:
        sid = self.sid_prefix + secrets.token_urlsafe(15)
        session = Session(self, sid, peer, transport)
        self.sessions[sid] = session
        if gated:
            self.gated.add(sid)
        self.per_ip[peer.ip] = self.per_ip.get(peer.ip, 0) + 1
        upgrades = ["websocket"] if transport == "polling" else []
        session.send(
            OPEN
            + jsonfast.dumps(
                {
                    "sid": sid,
                    "upgrades": upgrades,
                    "pingInterval": int(self.ping_interval * 1000),
                    "pingTimeout": int(self.ping_timeout * 1000),
                    "maxPayload": self.max_packet_bytes,
                }
            )
        )
        self.handler.on_open(session)
        return session

    def forget(self, session: Session) -> None:
        if self.sessions.pop(session.sid, None) is None:
            return
        ip = session.peer.ip
        if self.gate is not None and session.sid in self.gated:
            self.gated.discard(session.sid)
            self.gate.release(ip)
        left = self.per_ip.get(ip, 1) - 1
        if left:
            self.per_ip[ip] = left
        else:
            self.per_ip.pop(ip, None)

    # -- packets from a client ------------------------------------------------------------
    async def _packet(self, session: Session, packet: str) -> bool:
        """Act on one text packet; False if it is none this server knows (then close)."""
        kind = packet[:1]
        if kind == MESSAGE:
            await self.handler.on_message(session, packet[1:])
        elif kind == PONG:
            session.pong()
        elif kind == CLOSE:
            session.close()
        elif kind == PING:  # a client's ping (probes are handled by the upgrade)
            session.send(PONG + packet[1:])
        elif kind not in IGNORED:
            return False
        return True

    # -- ASGI -------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send, query)
            return
        if scope["type"] != "http":
            return
        method = scope.get("method", "GET")
        if method == "OPTIONS":
            await _respond(send, 204, b"", scope, extra=cors.preflight(scope))
            return
        if query.get("EIO") != "4":
            await _error(send, scope, 400, 5, "Unsupported protocol version")
            return
        if query.get("transport") != "polling":
            await _error(send, scope, 400, 0, "Transport unknown")
            return
        sid = query.get("sid")
        if sid is None:
            if method != "GET":
                await _error(send, scope, 400, 2, "Bad handshake method")
                return
            peer = _peer(scope)
            allowed, gated = await self._admit(peer)
            if not allowed:
                await _error(send, scope, 429, 4, "Too many sessions from this address")
                return
            session = self._open(peer, "polling", gated)
            await _respond(send, 200, self._drain(session), scope)
            return
        found = self.sessions.get(sid)
        if found is None or found.transport != "polling":
            await _error(send, scope, 400, 1, "Session ID unknown")
            return
        if method == "GET":
            await self._poll(found, scope, send, receive)
        elif method == "POST":
            await self._post(found, scope, send, receive)
        else:
            await _error(send, scope, 400, 3, "Bad request")

    def _drain(self, session: Session) -> bytes:
        batch = session.take()
        session.wake.clear()
        return SEPARATOR.join(map(_text, batch)).encode()

    async def _poll(self, session: Session, scope: Scope, send: Send, receive: Receive) -> None:
        if session.poll_waiting:  # two GETs at once: a broken client
            session.close()
            await _error(send, scope, 400, 3, "Bad request")
            return
        session.poll_waiting = True
        try:
            if not session.outbox and not session.closed:
                try:
                    await asyncio.wait_for(
                        session.wake.wait(), self.ping_interval + self.ping_timeout
                    )
                except TimeoutError:
                    pass
                except asyncio.CancelledError:
                    # the server is stopping (uvicorn ends what is still open after its
                    # grace period): the page hears that the session is over, not a 500
                    session.close()
            if session.closed:
                body = (SEPARATOR.join([*map(_text, session.take()), CLOSE])).encode()
            elif session.transport != "polling":  # upgraded meanwhile: the rest goes there
                body = NOOP.encode()
            elif session.outbox:
                body = self._drain(session)
            else:
                body = NOOP.encode()
        finally:
            session.poll_waiting = False
        await _respond(send, 200, body, scope)

    async def _post(self, session: Session, scope: Scope, send: Send, receive: Receive) -> None:
        if session.post_busy:  # two POSTs at once: their packets' order is lost
            session.close()
            await _error(send, scope, 400, 3, "Bad request")
            return
        session.post_busy = True
        try:
            status = await self._take_post(session, receive)
        finally:
            session.post_busy = False
        if status == 200:
            await _respond(send, 200, b"ok", scope)
        elif status == 413:
            await _error(send, scope, 413, 3, "Payload too large")
        elif status == 400:
            await _error(send, scope, 400, 3, "Bad request")

    async def _take_post(self, session: Session, receive: Receive) -> int:
        """Read a POST and act on its packets: the HTTP status to answer (0: none, gone)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return 0
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_packet_bytes:
                session.close()
                return 413
            chunks.append(chunk)
            if not msg.get("more_body"):
                break
        try:
            text = b"".join(chunks).decode()
        except UnicodeDecodeError:
            session.close()
            return 400
        for packet in text.split(SEPARATOR):
            if session.closed:
                break
            if packet[:1] == "b":
                try:
                    data = base64.b64decode(packet[1:], validate=True)
                except ValueError:
                    session.close()
                    return 400
                await self.handler.on_message(session, data)
            elif not await self._packet(session, packet):
                log.debug("session %s: invalid packet %r, closed", session.sid, packet[:16])
                session.close()
                return 400
        return 200

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, query: dict[str, str]
    ) -> None:
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        if query.get("EIO") != "4":
            await _refuse(send, scope, 400, 5, "Unsupported protocol version")
            return
        if query.get("transport") != "websocket":
            await _refuse(send, scope, 400, 0, "Transport unknown")
            return
        fast = scope.get("extensions", {}).get(EXTENSION) or {}
        send_texts, batch = fast.get("send_texts"), fast.get("receive_batch")
        direct = fast.get("write_now")
        sid = query.get("sid")
        if sid is None:
            peer = _peer(scope)
            allowed, gated = await self._admit(peer)
            if not allowed:
                await _refuse(send, scope, 429, 4, "Too many sessions from this address")
                return
            try:
                await send({"type": "websocket.accept"})
            except BaseException:
                if gated and self.gate is not None:
                    self.gate.release(peer.ip)
                raise
            session = self._open(peer, "websocket", gated)
            session.start_writer(send, send_texts, direct)
        else:
            target = self.sessions.get(sid)
            if target is None:
                await _refuse(send, scope, 400, 1, "Session ID unknown")
                return
            await send({"type": "websocket.accept"})
            if target.transport != "polling" or target.upgrading:
                # a second WebSocket on one session: accepted and closed, as the reference does
                await _ws_close(send)
                return
            if not await self._upgrade(target, receive, send, send_texts, direct):
                await _ws_close(send)
                return
            session = target
        await self._read(session, receive, send, batch)

    async def _read(
        self, session: Session, receive: Receive, send: Send, batch: ReceiveBatch | None
    ) -> None:
        """A WebSocket session's packets, until either side ends it; then the close frame.
        With `batch`, every message already received is taken at once."""
        session.reader = asyncio.current_task()
        try:
            while not session.closed:
                session.receiving = True
                try:
                    msgs = await batch() if batch is not None else [await receive()]
                finally:
                    session.receiving = False
                if not await self._messages(session, msgs):
                    break
        except asyncio.CancelledError:
            if not session.closed:
                raise
            _uncancel()  # close() woke this reader: end the WebSocket below
        finally:
            session.close()
            session.reader = None
            if session.writer is not None:
                session.writer.cancel()
            await _ws_close(send)

    async def _messages(self, session: Session, msgs: list[dict[str, Any]]) -> bool:
        """Act on WebSocket messages in order; False once the WebSocket is to end."""
        for msg in msgs:
            if session.closed or msg["type"] != "websocket.receive":
                return False  # websocket.disconnect
            text = msg.get("text")
            if text is None:
                data = msg.get("bytes") or b""
                if len(data) > self.max_packet_bytes:
                    log.debug("session %s: message over maxPayload, closed", session.sid)
                    return False
                await self.handler.on_message(session, data)
            elif _size(text) > self.max_packet_bytes:
                log.debug("session %s: message over maxPayload, closed", session.sid)
                return False
            elif not await self._packet(session, text):
                log.debug("session %s: invalid packet %r, closed", session.sid, text[:16])
                return False
        return True

    async def _upgrade(
        self,
        session: Session,
        receive: Receive,
        send: Send,
        send_texts: SendTexts | None,
        direct: WriteNow | None,
    ) -> bool:
        """Polling -> websocket: "2probe" / "3probe", a noop to the waiting GET, then "5"."""
        session.upgrading = True
        session.reader = asyncio.current_task()
        try:
            while True:
                session.receiving = True
                try:
                    msg = await receive()
                finally:
                    session.receiving = False
                if msg["type"] != "websocket.receive" or session.closed:
                    return False
                text = msg.get("text")
                if text == PING + "probe":
                    await send({"type": "websocket.send", "text": PONG + "probe"})
                    session.send(NOOP)  # lets the pending GET return, so the client upgrades
                elif text == UPGRADE:
                    # what polling had not sent goes here
                    session.start_writer(send, send_texts, direct)
                    session.wake.set()  # a GET still waiting ends with a noop (see _poll)
                    return True
                else:
                    return False
        except asyncio.CancelledError:
            if not session.closed:
                raise
            _uncancel()
            return False
        finally:
            session.upgrading = False
            if session.transport == "polling":
                session.reader = None


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _size(text: str) -> int:
    """Bytes of `text` in UTF-8 (the unit of maxPayload), without encoding ASCII."""
    return len(text) if text.isascii() else len(text.encode())


async def _ws_close(send: Send) -> None:
    """Close a WebSocket; a client that reads nothing is not waited for past CLOSE_WAIT."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_WAIT):
            await send({"type": "websocket.close", "code": 1000})


def _peer(scope: Scope) -> Peer:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    client = scope.get("client") or ("unknown", 0)
    referrer = headers.get("referer") or headers.get("origin") or ""
    return Peer(
        ip=str(client[0]),
        user_agent=headers.get("user-agent", "")[:512] or None,
        referrer=referrer[:1024] or None,
    )


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    scope: Scope,
    content_type: bytes = b"text/plain; charset=UTF-8",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *cors.ALLOW,
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error_body(status: int, code: int, message: str) -> bytes:
    """Engine.IO's error answer ({code, message}, as the reference server's) with the HTTP
    status beside it, as every error of this server has."""
    return jsonfast.dumps({"code": code, "message": message, "statusCode": status}).encode()


async def _error(send: Send, scope: Scope, status: int, code: int, message: str) -> None:
    await _respond(send, status, _error_body(status, code, message), scope, b"application/json")


async def _refuse(send: Send, scope: Scope, status: int, code: int, message: str) -> None:
    """Refuse a WebSocket handshake: the HTTP error a polling request would get, where the
    server can answer one (ASGI's websocket.http.response); else a plain refusal (403)."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = _error_body(status, code, message)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})
