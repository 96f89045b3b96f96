"""uvicorn's server, telling the app when its graceful shutdown begins.

uvicorn's shutdown closes the listeners, waits up to `timeout_graceful_shutdown` (3 s) for
the requests in flight, then cancels those still running; the app hears of the stop only
after that (lifespan shutdown). Told at the start instead, the storage gives the calls waiting
on a hung or locked database its stop's grace (clickvote/storage/base.py STOP_GRACE, 2 s):
their callers get `storage_unavailable` (a vote is sent again with its msgId and counted
once) and every request ends before uvicorn would cancel it mid-call, with a traceback.
"""

from __future__ import annotations

import socket

import uvicorn


class Server(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        stopping = getattr(self.config.app, "stopping", None)
        if stopping is not None:
            await stopping()
        await super().shutdown(sockets)
