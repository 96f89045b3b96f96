"""A minimal, fast Socket.IO (Engine.IO 4, websocket transport) asyncio client for load tests.

Only what the benchmarks need: connect to namespace "/", emit with or without an ack id,
answer pings, hand every event (and, if asked, an acknowledgement) to a callback as its
frame arrives, so a caller sees events and acks in the order the server sent them. Built
on wsproto (a runtime dependency), so it needs neither aiohttp nor websockets; it is much
lighter per socket than python-socketio's AsyncClient, which lets one process drive
thousands of sockets.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

EventHandler = Callable[[str, Any, float], None]
AckHandler = Callable[[Any, float], None]


class SioClient:
    def __init__(self, url: str, on_event: EventHandler | None = None) -> None:
        self.url = urlsplit(url)
        self.on_event = on_event
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.ack_hooks: dict[int, AckHandler] = {}
        self.next_id = 0
        self.buf: list[str] = []
        self.connected = asyncio.get_running_loop().create_future()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    async def connect(self, auth: dict[str, Any] | None = None, timeout: float = 30) -> None:
        host, port = self.url.hostname or "127.0.0.1", self.url.port or 80
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        self.reader, self.writer = reader, writer
        target = "/socket.io/?EIO=4&transport=websocket"
        writer.write(self.ws.send(Request(host=f"{host}:{port}", target=target)))
        self._auth = auth
        self.task = asyncio.create_task(self._read())
        await asyncio.wait_for(self.connected, timeout)

    def _send(self, text: str) -> None:
        assert self.writer is not None
        self.writer.write(self.ws.send(TextMessage(data=text)))

    def emit(self, event: str, data: Any) -> None:
        self._send("42" + json.dumps([event, data], separators=(",", ":")))

    def call_nowait(
        self, event: str, data: Any, on_ack: AckHandler | None = None
    ) -> asyncio.Future[Any]:
        self.next_id += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks[self.next_id] = fut
        if on_ack is not None:
            self.ack_hooks[self.next_id] = on_ack
        self._send(f"42{self.next_id}" + json.dumps([event, data], separators=(",", ":")))
        return fut

    async def call(
        self, event: str, data: Any, timeout: float = 30, on_ack: AckHandler | None = None
    ) -> Any:
        return await asyncio.wait_for(self.call_nowait(event, data, on_ack), timeout)

    async def close(self) -> None:
        if self.writer is not None:
            try:
                self.writer.write(self.ws.send(CloseConnection(code=1000)))
                self.writer.close()
            except Exception:
                pass
        if self.task is not None:
            self.task.cancel()

    def _packet(self, text: str, now: float) -> None:
        kind = text[:1]
        if kind == "0":  # engine.io open
            self._send("40" + (json.dumps(self._auth) if self._auth else ""))
        elif kind == "2":  # ping
            self._send("3")
        elif kind == "4":
            sub, body = text[1:2], text[2:]
            if sub == "0":
                if not self.connected.done():
                    self.connected.set_result(None)
            elif sub == "3":  # ack: 43<id>[...]
                i = 0
                while i < len(body) and body[i].isdigit():
                    i += 1
                ack_id = int(body[:i])
                fut, hook = self.acks.pop(ack_id, None), self.ack_hooks.pop(ack_id, None)
                if fut is not None and not fut.done():
                    args = json.loads(body[i:])
                    result = args[0] if args else None
                    if hook is not None:
                        hook(result, now)
                    fut.set_result(result)
            elif sub == "2" and self.on_event is not None:
                i = 0
                while i < len(body) and body[i].isdigit():
                    i += 1
                args = json.loads(body[i:])
                self.on_event(args[0], args[1] if len(args) > 1 else None, now)
            elif sub == "4" and not self.connected.done():
                self.connected.set_exception(ConnectionError(body))

    async def _read(self) -> None:
        assert self.reader is not None and self.writer is not None
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                now = time.monotonic()
                self.ws.receive_data(data)
                for ev in self.ws.events():
                    if isinstance(ev, TextMessage):
                        self.buf.append(ev.data)
                        if ev.message_finished:
                            self._packet("".join(self.buf), now)
                            self.buf.clear()
                    elif isinstance(ev, Ping):
                        self.writer.write(self.ws.send(ev.response()))
                    elif isinstance(ev, RejectConnection | CloseConnection):
                        raise ConnectionError(f"websocket closed: {ev}")
                    elif isinstance(ev, AcceptConnection):
                        pass
        except (ConnectionError, OSError, asyncio.CancelledError) as exc:
            err = exc if isinstance(exc, Exception) else ConnectionError("cancelled")
            if not self.connected.done():
                self.connected.set_exception(err)
            for fut in self.acks.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection lost"))
            self.acks.clear()
            self.ack_hooks.clear()
