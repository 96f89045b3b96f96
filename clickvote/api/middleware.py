"""ASGI middleware of the JSON API: the request body limit (CORS: clickvote/cors.py)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from clickvote.api.errors import error_body


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
