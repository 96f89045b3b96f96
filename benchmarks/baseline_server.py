"""Baseline for the vote path: python-socketio on the same uvicorn stack, ack only.

``python -m benchmarks.baseline_server PORT``: the same uvicorn options as
``clickvote serve`` (clickvote.app.SERVER_OPTIONS); `vote` and `login` only acknowledge.
"""

from __future__ import annotations

import sys
from typing import Any

import socketio
import uvicorn

from clickvote.app import SERVER_OPTIONS

sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)


@sio.on("vote")
async def vote(sid: str, data: Any) -> dict[str, Any]:
    return {"ok": True}


@sio.on("login")
async def login(sid: str, data: Any) -> dict[str, Any]:
    return {"ok": True, "token": "x"}


app = socketio.ASGIApp(sio)

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        **{**SERVER_OPTIONS, "ws": "wsproto"},  # uvicorn's own, not ClickVote's direct path
    )
