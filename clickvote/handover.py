"""Engine.IO sessions across the workers of `clickvote serve --workers N`.

A session lives in the worker that opened it, whose number starts its sid ("<worker>.<random
part>", clickvote/engineio.py; the random part is as unguessable as with one worker). Any
worker may accept the next connection, so a request for a session of another worker (a
long-poll, a POST, a WebSocket upgrade) is handed over: before it is parsed, the accepting
worker sends the connection's descriptor with the bytes already read (SCM_RIGHTS, one datagram)
to the owner's Unix socket in the private run directory, and forgets the connection; the owner
serves it from those bytes on, as if it had accepted it. Connections are handed over between
requests only (keep-alive ones too). A request whose first read does not hold its whole
request line, or whose owner does not take it (gone, restarting), is answered where it landed:
"Session ID unknown", and the client opens a new session, as after a server restart.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from clickvote import graceful

log = logging.getLogger("clickvote.handover")
PREFIX = b"/socket.io/"
DATAGRAM_MAX = 1024 * 1024  # bytes: the largest first read asyncio makes is 256 KiB
MAX_WORKERS = 10_000


def socket_path(rundir: str, worker: int) -> str:
    return str(Path(rundir) / f"w{worker}.sock")


def owner(data: bytes) -> int | None:
    """The worker named by the sid of the request starting `data`, if it names one."""
    line, found, _ = data.partition(b"\r\n")
    if not found:
        return None
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[1].startswith(PREFIX):
        return None
    query = parts[1].partition(b"?")[2].decode("latin-1")
    sid = parse_qs(query).get("sid", [""])[-1]
    head, dot, _ = sid.partition(".")
    if not dot or not (head.isascii() and head.isdigit()) or len(head) > 5:
        return None
    index = int(head)
    return index if index < MAX_WORKERS else None


class Handover:
    """Worker `index`'s end: sends connections to their owners, adopts the ones sent here."""

    def __init__(self, rundir: str, index: int) -> None:
        self.rundir, self.index = rundir, index
        self.out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.out.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, DATAGRAM_MAX)
        self.out.setblocking(False)
        self.inbox: socket.socket | None = None
        self.factory: Callable[[], Any] | None = None

    def route(self, transport: asyncio.Transport, data: bytes) -> bool:
        """Hand the connection over if its request is for another worker's session."""
        target = owner(data)
        if target is None or target == self.index:
            return False
        sock = transport.get_extra_info("socket")
        if sock is None:
            return False
        try:
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [sock.fileno()]))]
            self.out.sendmsg([data], rights, 0, socket_path(self.rundir, target))
        except OSError as exc:  # the owner is gone or restarting: answered here
            log.debug("no handover to worker %d (%s)", target, exc)
            return False
        transport.abort()  # the owner holds the connection now (its own descriptor)
        return True

    def receive(self, factory: Callable[[], Any]) -> None:
        """Adopt connections sent here, each served by a protocol from `factory`."""
        self.factory = factory
        path = socket_path(self.rundir, self.index)
        with contextlib.suppress(FileNotFoundError):
            Path(path).unlink()  # left by this worker's predecessor
        inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        inbox.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, DATAGRAM_MAX)
        inbox.bind(path)
        inbox.setblocking(False)
        self.inbox = inbox
        asyncio.get_running_loop().add_reader(inbox.fileno(), self._readable)

    def _readable(self) -> None:
        assert self.inbox is not None
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.inbox, DATAGRAM_MAX, 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # pragma: no cover - logged, the next one is read
                log.warning("handover: %s", exc)
                return
            for extra in fds[1:]:
                socket.close(extra)
            if fds:
                conn = socket.socket(fileno=fds[0])
                asyncio.get_running_loop().create_task(self._adopt(conn, data))

    async def _adopt(self, conn: socket.socket, data: bytes) -> None:
        assert self.factory is not None
        factory = self.factory

        def primed() -> Any:
            protocol = factory()
            protocol.primed = data  # read first, before anything new (clickvote/connguard.py)
            return protocol

        conn.setblocking(False)
        try:
            await asyncio.get_running_loop().connect_accepted_socket(primed, conn)
        except OSError as exc:  # pragma: no cover - the client went away meanwhile
            log.debug("handover: %s", exc)
            conn.close()

    def close(self) -> None:
        if self.inbox is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.inbox.fileno())
            self.inbox.close()
            self.inbox = None
        self.out.close()


class WorkerServer(graceful.Server):
    """uvicorn's server (telling the app when a stop begins) that also adopts the
    connections other workers hand over."""

    def __init__(self, config: uvicorn.Config, handover: Handover) -> None:
        super().__init__(config)
        self.handover = handover

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        config, state = self.config, self.server_state
        self.handover.receive(
            lambda: config.http_protocol_class(  # type: ignore[call-arg] # as uvicorn's own
                config=config, server_state=state, app_state=self.lifespan.state
            )
        )

    async def shutdown(self, sockets: Any = None) -> None:
        self.handover.close()
        await super().shutdown(sockets)
