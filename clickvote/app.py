"""ASGI application factory: FastAPI (JSON API, dashboard files) + Socket.IO at /socket.io/."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from clickvote import __version__
from clickvote.config import Settings
from clickvote.context import Context
from clickvote.engineio import MAX_PAYLOAD
from clickvote.publiccounts import build_public_router
from clickvote.realtime import Realtime
from clickvote.routes import BodyLimit, build_router, error_body, install_error_handlers
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
# next heartbeat (25 s).
SERVER_OPTIONS: dict[str, Any] = {
    "http": "h11",
    "ws": LeanWSProtocol,  # uvicorn's wsproto protocol + a direct path (clickvote/wsfast.py)
    "ws_per_message_deflate": False,  # as engine.io's own server: frames read directly
    "loop": "asyncio",
    "ws_max_size": MAX_PAYLOAD,
    "timeout_graceful_shutdown": 3,
}


def create_app(settings: Settings | None = None) -> Any:
    settings = settings or Settings.from_env()
    ctx = Context.build(settings)
    realtime = Realtime(ctx)
    realtime.sio.connect_timeout = settings.connect_timeout
    realtime.sio.engine.max_sessions_per_ip = settings.max_sessions_per_ip
    realtime.sio.engine.max_queue = settings.max_socket_queue

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.start()
        await realtime.start()
        task = asyncio.create_task(_housekeeping(ctx))
        # Everything loaded so far lives as long as the process: out of the garbage
        # collector's sight, so a full collection under load walks only what came after
        # (the start-up heap alone took ~20 ms to walk: a stalled event loop each time).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await realtime.close()
            await ctx.close()

    api = FastAPI(
        title="ClickVote", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan
    )
    api.state.ctx = ctx
    api.state.realtime = realtime
    install_error_handlers(api)
    api.add_middleware(BodyLimit, max_body=settings.max_body)

    @api.middleware("http")
    async def public_cors(request: Request, call_next: Any) -> Response:
        """The /api/ endpoints are read by embeds on any site: any origin, no credentials."""
        if not request.url.path.startswith("/api/"):
            response: Response = await call_next(request)
            return response
        if request.method == "OPTIONS":
            response = Response(status_code=204)
        else:
            try:
                response = await call_next(request)
            except Exception:  # pragma: no cover - handlers answer user errors themselves
                log.exception("unhandled error")
                response = JSONResponse(error_body(500, "internal error"), 500)
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        return response

    @api.get("/healthz", tags=["meta"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    api.include_router(build_router())
    api.include_router(build_public_router())

    @api.get("/embed.js", include_in_schema=False)
    async def embed_js() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "embed.js",
            media_type="text/javascript",
            headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"},
        )

    async def index_page() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"}
        )

    for page in PAGES:
        api.add_api_route(page, index_page, methods=["GET"], include_in_schema=False)
    api.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")

    return App(api, realtime.sio)


class App:
    """/socket.io/ (HTTP and WebSocket) to the Socket.IO server, everything else to FastAPI."""

    def __init__(self, api: FastAPI, sio: Any) -> None:
        self.api, self.sio = api, sio

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan" and scope["path"].startswith(SOCKETIO_PATH):
            await self.sio(scope, receive, send)
        else:
            await self.api(scope, receive, send)


async def _housekeeping(ctx: Context) -> None:
    while True:
        try:
            await ctx.housekeeping()
        except Exception:  # pragma: no cover - logged, retried next hour
            log.exception("housekeeping failed")
        await asyncio.sleep(3600)
