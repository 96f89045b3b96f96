"""uvicorn's server, telling the app when its graceful shutdown begins.

uvicorn's shutdown closes the listeners, waits up to `timeout_graceful_shutdown` (3 s) for
the requests in flight, then cancels those still running; the app hears of the stop only
after that (lifespan shutdown). Told at the start instead, the storage gives the calls waiting
on a hung or locked database its stop's grace (clickvote/storage/base.py STOP_GRACE, 2 s):
their callers get `storage_unavailable` (a vote is sent again with its msgId and counted
once) and every request ends before uvicorn would cancel it mid-call, with a traceback.

A stop told twice is still one graceful stop: uvicorn takes a SIGINT during its shutdown for
a forced exit (a second Ctrl-C), which skips the app's lifespan shutdown and leaves a
traceback. A worker of `clickvote serve --workers N` hears a terminal's Ctrl-C (its process
group's SIGINT) and its supervisor's SIGTERM; only the same signal again forces the exit.
"""

from __future__ import annotations

import socket
from types import FrameType

import uvicorn


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stop_signals: set[int] = set()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig not in self.stop_signals:
            self.stop_signals.add(sig)  # the same stop, told another way: already under way
            return
        self.stop_signals.add(sig)
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        stopping = getattr(self.config.app, "stopping", None)
        if stopping is not None:
            await stopping()
        await super().shutdown(sockets)
