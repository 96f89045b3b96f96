"""ASGI application factory: Starlette (JSON API, dashboard files) + Socket.IO at /socket.io/."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from clickvote import __version__
from clickvote.abuse import FLUSH_EVERY
from clickvote.api import OPERATIONS, errors, openapi, routing
from clickvote.api.middleware import BodyLimit
from clickvote.config import Settings
from clickvote.context import Context
from clickvote.cors import Cors
from clickvote.engineio import MAX_PACKET_BYTES
from clickvote.hublink import HubLink
from clickvote.realtime import Realtime
from clickvote.storage.base import Outage, StorageUnavailable
from clickvote.webhooks import Deliverer
from clickvote.wsfast import LeanWSProtocol

log = logging.getLogger("clickvote")
STATIC_DIR = Path(__file__).parent / "web" / "static"
SOCKETIO_PATH = "/socket.io/"
PAGES = ("/", "/login", "/register", "/groups", "/groups/{group_id}", "/settings", "/analytics")
# How uvicorn serves the app (`clickvote serve`, the tests' servers, the benchmark baseline):
# pure-Python HTTP and WebSocket protocols and asyncio's own event loop, the same on every
# platform. (uvloop, measured against it with this Socket.IO layer, made no difference above
# the noise, and its wheels would add some 13 MB to the amd64 and arm64 images.)
# A WebSocket message over the Engine.IO limit is refused by uvicorn as it arrives (close code
# 1009), not buffered whole first (uvicorn's own limit is 16 MiB). On shutdown, requests in
# flight get a few seconds: a page's long-poll would otherwise hold the stop up until its
# next heartbeat (25 s). Engine.IO's ping and pong (clickvote/engineio.py) is a session's
# liveness check, as in engine.io's own server: uvicorn's WebSocket keepalive, a second ping
# per socket (every 20 s, a frame, its pong and two timers), is off.
SERVER_OPTIONS: dict[str, Any] = {
    "http": "h11",
    "ws": LeanWSProtocol,  # uvicorn's wsproto protocol + a direct path (clickvote/wsfast.py)
    "ws_per_message_deflate": False,  # as engine.io's own server: frames read directly
    "loop": "asyncio",
    "ws_max_size": MAX_PACKET_BYTES,
    "timeout_graceful_shutdown": 3,
    "ws_ping_interval": None,
}


def create_app(
    settings: Settings | None = None, hub: HubLink | None = None, worker: int | None = None
) -> Any:
    """`hub` and `worker`: this process is worker number `worker` of `clickvote serve
    --workers N` (clickvote/workers.py), linked to the other workers through `hub`."""
    settings = settings or Settings.from_env()
    ctx = Context.build(settings, hub)
    realtime = Realtime(ctx)
    realtime.sio.connect_timeout = settings.connect_timeout
    realtime.sio.engine.max_sessions_per_ip = settings.max_sessions_per_ip
    realtime.sio.engine.max_queue = settings.max_socket_queue
    if worker is not None:
        realtime.sio.engine.sid_prefix = f"{worker}."
    if hub is not None:
        realtime.sio.engine.gate = hub
        realtime.sio.on_room = hub.interest  # the hub relays a room's emits where it has sockets

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if hub is not None:
            await hub.start()
        await ctx.start()
        await realtime.start()
        deliverer = Deliverer(ctx.storage, ctx.box, settings)
        deliverer.start()
        tasks = [asyncio.create_task(_housekeeping(ctx)), asyncio.create_task(_refusals(ctx))]
        # Everything loaded so far lives as long as the process: out of the garbage
        # collector's sight, so a full collection under load walks only what came after
        # (the start-up heap alone took ~20 ms to walk: a stalled event loop each time).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await ctx.stopping()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await deliverer.close()
            await realtime.close()
            await ctx.close()
            if hub is not None:
                await hub.close()

    @functools.cache
    def spec() -> dict[str, Any]:  # written on first request: an idle server holds no copy
        return openapi.document(OPERATIONS, "ClickVote", __version__)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(spec())

    pages = [Route(page, index_page, methods=["GET"]) for page in PAGES]
    api = Starlette(
        routes=[
            *routing.routes(OPERATIONS),
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/embed.js", embed_js, methods=["GET"]),
            *pages,
            Mount("/static", DashboardFiles(directory=STATIC_DIR, check_dir=False), name="static"),
        ],
        middleware=[Middleware(Cors), Middleware(BodyLimit, max_body=settings.max_body)],
        exception_handlers=errors.HANDLERS,
        lifespan=lifespan,
    )
    api.state.ctx = ctx
    api.state.realtime = realtime
    return App(api, realtime.sio, ctx.stopping)


async def embed_js(request: Request) -> Response:
    return FileResponse(
        STATIC_DIR / "embed.js",
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=300"},
    )


async def index_page(request: Request) -> Response:
    return FileResponse(
        STATIC_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"}
    )


class DashboardFiles(StaticFiles):
    """The dashboard's files, revalidated on every load (`no-cache`: a 304 when unchanged), so
    a browser never runs an upgraded page with modules it cached from the version before."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


class App:
    """/socket.io/ (HTTP and WebSocket) to the Socket.IO server, everything else to Starlette."""

    def __init__(self, api: Starlette, sio: Any, stopping: Callable[[], Awaitable[None]]) -> None:
        self.api, self.sio = api, sio
        self.stopping = stopping  # called as the server's stop begins (clickvote/graceful.py)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan" and scope["path"].startswith(SOCKETIO_PATH):
            await self.sio(scope, receive, send)
        else:
            await self.api(scope, receive, send)


HOUSEKEEPING_EVERY = 3600.0  # seconds
HOUSEKEEPING_RETRY = 60.0  # seconds, while the database is unavailable


async def _housekeeping(
    ctx: Context, every: float = HOUSEKEEPING_EVERY, retry: float = HOUSEKEEPING_RETRY
) -> None:
    outage = Outage(log, "housekeeping")
    while True:
        wait = every
        try:
            await ctx.housekeeping()
            outage.ended()
        except StorageUnavailable as exc:  # restarting or hung: tried again shortly
            outage.began(exc)
            wait = retry
        except Exception:  # pragma: no cover - logged, retried next hour
            log.exception("housekeeping failed")
        await asyncio.sleep(wait)


async def _refusals(ctx: Context) -> None:
    """The abuse layers' refusal counts to storage, in batches (clickvote/abuse.py)."""
    while True:
        await asyncio.sleep(FLUSH_EVERY)
        await ctx.refusals.flush(ctx.storage)
