"""Connection limits of `clickvote serve`: open files, a connection cap, a header timeout.

- The soft open-files limit is raised to the hard one at start, and the connection cap kept
  FD_RESERVE below it, so accepting a connection never fails for want of a descriptor (the
  event loop would log a traceback per failed accept and stop answering).
- Past the cap a new connection gets `503` and is closed at once; one warning is logged when
  the cap is reached, and again only after the count has fallen back below 90 % of it.
- A connection has `header_timeout` seconds to send a request's headers: when it opens and
  after each response (idle keep-alive connections are closed sooner, by uvicorn's own
  5 s timeout). Upgraded WebSockets are timed by Engine.IO's pings instead.
- With `clickvote serve --workers N` the cap is the whole server's: each worker writes how many
  connections it holds into its own slot of a shared file (SharedCount), and a connection is
  refused when all the slots together pass the cap. (Two connections accepted at the same
  instant by two workers may pass it by one each; a slot is refreshed as its worker's
  connections open and close, so one only goes stale on the stricter side.)
- `route` (a worker of `clickvote serve --workers N`, clickvote/handover.py) may take a
  connection away between requests, before a request is parsed; a connection handed over to
  this process starts with the bytes its first worker read (`primed`).
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import struct
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("clickvote")
FD_RESERVE = 64  # descriptors kept for the database, Redis, logs and static files
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def raise_fd_limit() -> int:
    """Raise the soft open-files limit as far as allowed; return the soft limit now."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not a Unix
        return 1 << 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("could not raise the open-files limit above %d", soft)
    return int(soft) if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(max_connections: int, fd_limit: int) -> int:
    return max(1, min(max_connections, fd_limit - FD_RESERVE))


class SharedCount:
    """Open connections per worker, in one file mapped by all (slot `index`: this worker's)."""

    def __init__(self, path: str, index: int, workers: int) -> None:
        with open(path, "r+b") as fh:
            self.map = mmap.mmap(fh.fileno(), 8 * workers)
        self.index, self.format = index, f"{workers}q"
        self.update(0)  # what a predecessor of this worker held is gone with it

    def close(self) -> None:
        self.map.close()

    @staticmethod
    def create(path: str, workers: int) -> None:
        with open(path, "wb") as fh:
            fh.write(bytes(8 * workers))

    def update(self, mine: int) -> int:
        """Record this worker's count; the whole server's."""
        struct.pack_into("q", self.map, 8 * self.index, mine)
        return sum(struct.unpack_from(self.format, self.map))


Route = Callable[[asyncio.Transport, bytes], bool]  # True: the connection was handed over


def guarded_protocol(
    cap: int,
    header_timeout: float,
    route: Route | None = None,
    shared: SharedCount | None = None,
    fd_cap: int = 0,
) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with the connection cap and the header timeout. With `shared`
    (workers), `cap` counts every worker's connections and `fd_cap` this process's."""
    warned = [False]

    class Guarded(H11Protocol):
        _timer: asyncio.TimerHandle | None = None
        _cycle: Any = None
        primed = b""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            mine = len(self.connections)
            total = mine if shared is None else shared.update(mine)
            if total > cap or (fd_cap and mine > fd_cap):
                if not warned[0]:
                    warned[0] = True
                    log.warning("connection cap reached (%d): new connections get 503", cap)
                transport.write(BUSY)
                transport.close()
                return
            if warned[0] and total < cap * 0.9:
                warned[0] = False
            self._arm()
            if self.primed:
                data, self.primed = self.primed, b""
                self.data_received(data)

        def data_received(self, data: bytes) -> None:
            if route is not None and self._between_requests() and route(self.transport, data):
                return
            super().data_received(data)
            if self._timer is not None and (
                self.cycle is not self._cycle or self.transport.get_protocol() is not self
            ):
                self._disarm()  # a request's headers arrived, or it became a WebSocket

        def _between_requests(self) -> bool:
            idle = self.cycle is None or self.cycle.response_complete
            return idle and self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]

        def on_response_complete(self) -> None:
            super().on_response_complete()
            idle = self.cycle is None or self.cycle.response_complete
            if idle and not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)
            if shared is not None:
                shared.update(len(self.connections))

        def _arm(self) -> None:
            self._disarm()
            self._cycle = self.cycle
            self._timer = self.loop.call_later(header_timeout, self._expired)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self) -> None:
            self._timer = None
            if self.transport.get_protocol() is self and not self.transport.is_closing():
                self.transport.close()

    return Guarded
