"""Engine.IO v4 server on ASGI: the transport under Socket.IO (clickvote/sio.py).

What socket.io-client 4 (and so the published @clickvote/react) and python-socketio's client
speak: an HTTP long-polling session that may upgrade to a WebSocket (probe, noop, upgrade), or
a WebSocket from the start; packets 0 open, 1 close, 2 ping, 3 pong, 4 message, 5 upgrade,
6 noop; polling payloads joined by the record separator \\x1e. The server pings every
`ping_interval` seconds and drops a session whose pong is `ping_timeout` seconds late.
Binary messages reach the layer above as bytes; ClickVote sends none.

Sending never waits: `Session.send` queues the packet. A WebSocket session has one writer task
that drains its queue, so one slow client holds up nobody else; a polling session's queue goes
out with the next GET. Each session's packets leave in the order they were queued.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

from clickvote import jsonfast

log = logging.getLogger("clickvote.engineio")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = "0123456"
SEPARATOR = "\x1e"
MAX_PAYLOAD = 64 * 1024  # bytes of one packet or polling request (the handshake's maxPayload)


@dataclass(frozen=True)
class Peer:
    """Who opened a session: what the handshake request said."""

    ip: str
    user_agent: str | None
    referrer: str | None


class Handler(Protocol):
    """The layer above (Socket.IO): told of every session and of every message in it."""

    def on_open(self, session: Session) -> None: ...
    async def on_message(self, session: Session, data: str | bytes) -> None: ...
    def on_close(self, session: Session) -> None: ...


class Session:
    __slots__ = (
        "closed",
        "last_pong",
        "outbox",
        "peer",
        "ping_sent",
        "poll_waiting",
        "server",
        "sid",
        "transport",
        "upgrading",
        "wake",
        "writer",
        "ws_send",
    )

    def __init__(self, server: EngineServer, sid: str, peer: Peer, transport: str) -> None:
        self.server, self.sid, self.peer, self.transport = server, sid, peer, transport
        self.outbox: list[str] = []  # engine.io packets not yet sent
        self.wake = asyncio.Event()  # set when outbox gets something (or the session closes)
        self.closed = False
        self.upgrading = False
        self.poll_waiting = False
        self.ws_send: Send | None = None
        self.writer: asyncio.Task[None] | None = None
        self.ping_sent = 0.0  # monotonic time of the unanswered ping, 0 when none
        self.last_pong = time.monotonic()

    def send(self, packet: str) -> None:
        """Queue one engine.io packet (e.g. "4" + a socket.io packet). Never waits."""
        if self.closed:
            return
        self.outbox.append(packet)
        if len(self.outbox) == 1:
            self.wake.set()

    def message(self, text: str) -> None:
        self.send(MESSAGE + text)

    def close(self) -> None:
        """End the session (idempotent): the layer above hears of it once."""
        if self.closed:
            return
        self.closed = True
        self.wake.set()
        self.server.sessions.pop(self.sid, None)
        self.server.handler.on_close(self)

    # -- websocket writer ----------------------------------------------------------------
    def start_writer(self, ws_send: Send) -> None:
        self.ws_send = ws_send
        self.transport = "websocket"
        self.writer = asyncio.create_task(self._write_loop(ws_send))

    async def _write_loop(self, ws_send: Send) -> None:
        try:
            while not self.closed:
                if not self.outbox:
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                batch, self.outbox = self.outbox, []
                for packet in batch:
                    await ws_send({"type": "websocket.send", "text": packet})
        except Exception:  # the connection went away under us: the reader sees it too
            self.close()
        # closed here (no pong, a protocol error): end the websocket, which ends its reader
        with contextlib.suppress(Exception):
            await ws_send({"type": "websocket.close", "code": 1000})


class EngineServer:
    """The ASGI app for /socket.io/ (HTTP long-polling and WebSocket)."""

    def __init__(
        self,
        handler: Handler,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_payload: int = MAX_PAYLOAD,
    ) -> None:
        self.handler = handler
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.max_payload = max_payload
        self.sessions: dict[str, Session] = {}
        self._pinger: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def _ensure_pinger(self) -> None:
        if self._pinger is None or self._pinger.done():
            self._pinger = asyncio.create_task(self._ping_loop())

    async def _ping_loop(self) -> None:
        tick = min(1.0, self.ping_interval / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for s in list(self.sessions.values()):
                if s.ping_sent:
                    if now - s.ping_sent > self.ping_timeout:
                        log.debug("session %s: no pong, closed", s.sid)
                        s.close()
                elif now - s.last_pong >= self.ping_interval:
                    s.ping_sent = now
                    s.send(PING)

    async def close(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
        for s in list(self.sessions.values()):
            s.close()

    def _open(self, peer: Peer, transport: str) -> Session:
        self._ensure_pinger()
        sid = secrets.token_urlsafe(15)
        session = Session(self, sid, peer, transport)
        self.sessions[sid] = session
        upgrades = ["websocket"] if transport == "polling" else []
        session.send(
            OPEN
            + jsonfast.dumps(
                {
                    "sid": sid,
                    "upgrades": upgrades,
                    "pingInterval": int(self.ping_interval * 1000),
                    "pingTimeout": int(self.ping_timeout * 1000),
                    "maxPayload": self.max_payload,
                }
            )
        )
        self.handler.on_open(session)
        return session

    # -- packets from a client ------------------------------------------------------------
    async def _packet(self, session: Session, packet: str | bytes) -> None:
        if isinstance(packet, bytes):  # a binary message (websocket frame or "b" + base64)
            await self.handler.on_message(session, packet)
            return
        kind, body = packet[:1], packet[1:]
        if kind == MESSAGE:
            await self.handler.on_message(session, body)
        elif kind == PONG:
            session.ping_sent = 0.0
            session.last_pong = time.monotonic()
        elif kind == CLOSE:
            session.close()
        elif kind == PING:  # a client's ping (probes are handled by the upgrade)
            session.send(PONG + body)
        # NOOP, UPGRADE outside an upgrade, unknown types: nothing to do

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
            await _respond(send, 204, b"", scope, extra=_preflight_headers(scope))
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
                await _error(send, scope, 400, 3, "Bad request")
                return
            session = self._open(_peer(scope), "polling")
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
        batch, session.outbox = session.outbox, []
        session.wake.clear()
        return SEPARATOR.join(batch).encode()

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
                body = (SEPARATOR.join([*session.outbox, CLOSE])).encode()
                session.outbox = []
            elif session.outbox:
                body = self._drain(session)
            else:
                body = NOOP.encode()
        finally:
            session.poll_waiting = False
        await _respond(send, 200, body, scope)

    async def _post(self, session: Session, scope: Scope, send: Send, receive: Receive) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_payload:
                session.close()
                await _error(send, scope, 413, 3, "Payload too large")
                return
            chunks.append(chunk)
            if not msg.get("more_body"):
                break
        try:
            text = b"".join(chunks).decode()
        except UnicodeDecodeError:
            await _error(send, scope, 400, 3, "Bad request")
            return
        for packet in text.split(SEPARATOR):
            if session.closed:
                break
            if packet.startswith("b"):
                try:
                    await self._packet(session, base64.b64decode(packet[1:], validate=True))
                except ValueError:
                    continue
            else:
                await self._packet(session, packet)
        await _respond(send, 200, b"ok", scope)

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, query: dict[str, str]
    ) -> None:
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        sid = query.get("sid")
        upgrade_from = self.sessions.get(sid) if sid else None
        if (
            query.get("EIO") != "4"
            or query.get("transport") != "websocket"
            or (sid and (upgrade_from is None or upgrade_from.transport != "polling"))
            or (upgrade_from is not None and upgrade_from.upgrading)
        ):
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        if upgrade_from is not None:
            session: Session | None = await self._upgrade(upgrade_from, receive, send)
            if session is None:
                return
        else:
            session = self._open(_peer(scope), "websocket")
            session.start_writer(send)
        try:
            while not session.closed:
                msg = await receive()
                if msg["type"] != "websocket.receive":
                    break  # websocket.disconnect
                data = msg.get("text")
                if data is None:
                    data = msg.get("bytes") or b""
                if len(data) > self.max_payload:
                    log.debug("session %s: message of %d bytes, closed", session.sid, len(data))
                    break
                await self._packet(session, data)
        finally:
            session.close()
            if session.writer is not None:
                session.writer.cancel()
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": 1000})

    async def _upgrade(self, session: Session, receive: Receive, send: Send) -> Session | None:
        """Polling -> websocket: "2probe" / "3probe", a noop to the waiting GET, then "5"."""
        session.upgrading = True
        try:
            while True:
                msg = await receive()
                if msg["type"] != "websocket.receive" or session.closed:
                    return None
                text = msg.get("text")
                if text == PING + "probe":
                    await send({"type": "websocket.send", "text": PONG + "probe"})
                    session.send(NOOP)  # lets the pending GET return, so the client upgrades
                elif text == UPGRADE:
                    session.start_writer(send)  # what polling had not sent goes out here
                    return session
                else:
                    return None
        finally:
            session.upgrading = False


def _peer(scope: Scope) -> Peer:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    client = scope.get("client") or ("unknown", 0)
    referrer = headers.get("referer") or headers.get("origin") or ""
    return Peer(
        ip=str(client[0]),
        user_agent=headers.get("user-agent", "")[:512] or None,
        referrer=referrer[:1024] or None,
    )


def _cors_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    for k, v in scope["headers"]:
        if k.lower() == b"origin":
            return [
                (b"access-control-allow-origin", v),
                (b"access-control-allow-credentials", b"true"),
            ]
    return [(b"access-control-allow-origin", b"*")]


def _preflight_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    out = [(b"access-control-allow-methods", b"OPTIONS, GET, POST")]
    for k, v in scope["headers"]:
        if k.lower() == b"access-control-request-headers":
            out.append((b"access-control-allow-headers", v))
    return out


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
        *_cors_headers(scope),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, scope: Scope, status: int, code: int, message: str) -> None:
    body = jsonfast.dumps({"code": code, "message": message}).encode()
    await _respond(send, status, body, scope, b"application/json")
