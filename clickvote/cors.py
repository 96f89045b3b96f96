"""CORS, decided here only. The embed's endpoints (`PUBLIC`: Socket.IO's long-polling, `/api/`,
`/public/v1/`, `/embed.js`) are read by pages of any site and authenticate by key and token,
never by cookie: they answer any origin with `*` and never allow credentials, so a browser
sends no cookie with them and shows a page nothing a cookie would have unlocked. Everything
else (the dashboard and its JSON API) is same-origin: no CORS headers at all, so a foreign page
can't read its answers, and its preflights fail.

`Cors` applies this to an ASGI app (the Starlette app); the Engine.IO layer, which answers
its own requests, takes `ALLOW` and `preflight()`."""

from __future__ import annotations

from typing import Any

PUBLIC = ("/socket.io/", "/api/", "/public/v1/", "/embed.js")
ALLOW = [(b"access-control-allow-origin", b"*")]
METHODS = (b"access-control-allow-methods", b"GET, POST, OPTIONS")
PREFIX = b"access-control-"
Header = tuple[bytes, bytes]


def public(path: str) -> bool:
    """Whether any origin may read `path` (without credentials)."""
    return path.startswith(PUBLIC)


def preflight(scope: dict[str, Any]) -> list[Header]:
    """What a preflight OPTIONS on a public path gets besides `ALLOW`: the methods and the
    request headers the browser asked for (never credentials: the origin is a wildcard)."""
    out = [METHODS]
    for k, v in scope["headers"]:
        if k.lower() == b"access-control-request-headers":
            out.append((b"access-control-allow-headers", v))
    return out


def without_cors(headers: list[Header]) -> list[Header]:
    return [(k, v) for k, v in headers if not k.lower().startswith(PREFIX)]


class Cors:
    """ASGI: a public path's preflight answers 204 at once and its answers carry `ALLOW`;
    any other path's answers carry no CORS header, whatever the handler set."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        shared = public(scope["path"])
        if shared and scope["method"] == "OPTIONS":
            headers = [*ALLOW, *preflight(scope), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        added = ALLOW if shared else []

        async def send_with_cors(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = without_cors(message.get("headers", []))
                message = {**message, "headers": headers + added}
            await send(message)

        await self.app(scope, receive, send_with_cors)
