"""ASGI middleware of the JSON API: the request body limit, and CORS for the public /api/."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from clickvote.api.errors import error_body

PUBLIC_PREFIX = "/api/"
CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, OPTIONS"),
    (b"access-control-allow-headers", b"Content-Type"),
]


class BodyLimit:
    """ASGI: a request body over `max_body` bytes answers 413. The body is read as it arrives
    (a declared Content-Length over the limit is refused at once), then handed on whole: at
    most `max_body` bytes of it are ever held. The rest of a refused body is read and dropped
    by the HTTP layer (closing instead would reset the connection before the client reads
    the 413)."""

    def __init__(self, app: Any, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_body:
            await self._refuse(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body: bytes | None = b"".join(chunks)

        async def replay() -> Any:
            nonlocal body
            if body is None:
                return await receive()
            message, body = {"type": "http.request", "body": body, "more_body": False}, None
            return message

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        message = f"Request body over {self.max_body} bytes"
        await JSONResponse(error_body(413, message), 413)(scope, receive, send)


class PublicCors:
    """ASGI: the /api/ endpoints are read by embeds on any site: any origin, no credentials
    (a preflight OPTIONS answers 204 at once)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PUBLIC_PREFIX):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": CORS_HEADERS})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Any) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"access-control-allow-")
                ]
                message = {**message, "headers": kept + CORS_HEADERS}
            await send(message)

        await self.app(scope, receive, send_with_cors)
