"""A small asyncio Engine.IO 4 / Socket.IO 5 client for ClickVote, and what drives a server
from outside: a free local port, the settings that take the rate limits out of the way.

`SioClient` speaks the WebSocket transport only: connect to namespace "/" (with an optional
`auth` payload and extra handshake headers), emit with or without an acknowledgement id,
answer pings, hand every event (and, if asked, each acknowledgement) to a callback as its
frame arrives, so a caller sees events and acks in the order the server sent them. Built on
wsproto (a runtime dependency): far lighter per socket than python-socketio's client, so one
process drives thousands of sockets. `Client` is its blocking form for threads (one shared
event loop thread), recording every event it receives. Load tests, benchmarks and the
release smoke test use these. `proof_of_work` solves a challenge (environments that ask for
proof of work before a first vote).
"""

from __future__ import annotations

import asyncio
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
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

from clickvote import proof

# Out of the way of load from one address and one voter; cheap password hashing. Keys are
# clickvote.config.Settings fields; `limits_off_env` gives them as CLICKVOTE_* variables.
LIMITS_OFF: dict[str, Any] = {
    "bcrypt_rounds": 4,
    "rate_voter_burst": 1_000_000.0,
    "rate_voter_per_sec": 1_000_000.0,
    "rate_ip_burst": 1_000_000.0,
    "rate_ip_per_sec": 1_000_000.0,
    "rate_login_burst": 1_000_000.0,
    "rate_login_per_sec": 1_000_000.0,
    "max_sessions_per_ip": 1_000_000,
    "ip_voters": 0,  # new environments: no IP + user-agent window (clickvote/abuse.py)
    "log_level": "warning",
}


def limits_off_env() -> dict[str, str]:
    """LIMITS_OFF as the environment of a `clickvote serve` process."""
    return {f"CLICKVOTE_{key.upper()}": str(value) for key, value in LIMITS_OFF.items()}


def proof_of_work(challenge: Any) -> dict[str, Any] | None:
    """The `pow` field of a vote, {challenge, counter}, for a `challenge` event's answer (what
    the embed's Web Worker works out); None where the environment asks for no work."""
    if not isinstance(challenge, dict) or not challenge.get("challenge"):
        return None
    text, bits = str(challenge["challenge"]), int(challenge["difficulty"])
    return {"challenge": text, "counter": proof.solve(text, bits)}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


EventHandler = Callable[[str, Any, float], None]
AckHandler = Callable[[Any, float], None]


class SioClient:
    """One Socket.IO connection over a WebSocket; create it inside the running loop."""

    def __init__(
        self,
        url: str,
        on_event: EventHandler | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = urlsplit(url)
        self.on_event = on_event
        self.headers = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.ack_hooks: dict[int, AckHandler] = {}
        self.next_id = 0
        self.buf: list[str] = []
        self.connected_future = asyncio.get_running_loop().create_future()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    async def connect(self, auth: dict[str, Any] | None = None, timeout: float = 30) -> None:
        host, port = self.url.hostname or "127.0.0.1", self.url.port or 80
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        self.reader, self.writer = reader, writer
        target = "/socket.io/?EIO=4&transport=websocket"
        request = Request(host=f"{host}:{port}", target=target, extra_headers=self.headers)
        writer.write(self.ws.send(request))
        self._auth = auth
        self.task = asyncio.create_task(self._read())
        await asyncio.wait_for(self.connected_future, timeout)

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

    @property
    def connected(self) -> bool:
        """Connected to the namespace, and the connection has not ended since."""
        fut = self.connected_future
        opened = fut.done() and not fut.cancelled() and fut.exception() is None
        return opened and self.task is not None and not self.task.done()

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
                if not self.connected_future.done():
                    self.connected_future.set_result(None)
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
            elif sub == "4" and not self.connected_future.done():
                self.connected_future.set_exception(ConnectionError(body))

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
            if not self.connected_future.done():
                self.connected_future.set_exception(err)
            for fut in self.acks.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection lost"))
            self.acks.clear()
            self.ack_hooks.clear()


T = TypeVar("T")
_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _run(coro: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run `coro` on the shared background loop (started on first use); wait for it."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="clickvote-client", daemon=True).start()
    return asyncio.run_coroutine_threadsafe(coro, _loop).result(timeout)


class Client:
    """A blocking `SioClient` recording every event it receives in `events`; `headers` go
    with its handshake (e.g. X-Forwarded-For). Raises ConnectionError when the server refuses
    the connection, TimeoutError when an acknowledgement does not come within `timeout`."""

    def __init__(
        self,
        url: str,
        auth: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.timeout = timeout
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()

        async def connect() -> SioClient:
            c = SioClient(url, lambda name, data, _now: self.events.put((name, data)), headers)
            try:
                await c.connect(auth, timeout)
            except BaseException:
                await c.close()
                raise
            return c

        self.sio = _run(connect(), timeout + 1)

    @property
    def connected(self) -> bool:
        return self.sio.connected

    def call(self, event: str, data: Any, timeout: float | None = None) -> Any:
        """Emit `event` with an acknowledgement id; its acknowledgement's first argument."""
        wait = timeout or self.timeout
        return _run(self.sio.call(event, data, wait), wait + 1)

    def emit(self, event: str, data: Any) -> None:
        async def send() -> None:
            self.sio.emit(event, data)

        _run(send(), self.timeout)

    def close(self) -> None:
        _run(self.sio.close(), self.timeout)
