"""The server itself: is it up, which version."""

from __future__ import annotations

from typing import Any

from clickvote import __version__
from clickvote.api.schema import Answer, Operations, const, obj, string
from clickvote.api.session import Call

OPERATIONS = Operations()


@OPERATIONS(
    "GET",
    "/healthz",
    tag="meta",
    summary="Liveness: the server answers, and its version",
    answers={200: Answer("up", obj({"status": const("ok"), "version": string()}, closed=True))},
)
async def healthz(call: Call) -> dict[str, Any]:
    return {"status": "ok", "version": __version__}
