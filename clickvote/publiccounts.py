"""Counts without JavaScript: an item's totals as JSON and as an SVG badge, cacheable.

`GET /public/v1/counts?key=pb_..&group=likes&item=post-42` -> {group, item, total, startEnd}
(`total` as get-votes' total: count, avg, mean, sum, voters); `GET /public/v1/badge.svg?..` the
same as an image. Both: any origin, `Cache-Control: public, max-age=COUNTS_MAX_AGE` (a CDN or
a browser keeps them a few seconds), an `ETag` of the answer (`If-None-Match` -> 304), the
per-IP rate limit of /api/votes, the field rules of clickvote/fields.py. The embed draws its
first frame from the JSON answer, and a site can render it into the element's light DOM (seen
where scripts are off).
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from clickvote import jsonfast
from clickvote.fields import MAX_VOTE_TO, FieldError, check_text
from clickvote.routes import check_fields, client_ip, ctx_of, throttle
from clickvote.votes import RANGE, VoteError, current_state

COUNTS_MAX_AGE = 5  # seconds a cache may serve an answer
PREFIX = "/public/v1"


def check_item(item: str) -> str:
    """An item id (the events' `voteTo`): 1..MAX_VOTE_TO characters."""
    check_text("item", item)
    if not 1 <= len(item) <= MAX_VOTE_TO:
        raise FieldError("item", f"must be 1..{MAX_VOTE_TO} characters")
    return item


async def counts_of(request: Request, key: str, group: str, item: str) -> dict[str, Any]:
    ctx = ctx_of(request)
    check_item(item)
    await throttle(ctx.ip_limiter, "ip|" + client_ip(request))  # as /api/votes
    env = await ctx.env_from_key(key)
    found = await ctx.get_group_by_name(env.id, group)
    if found is None:
        raise VoteError("unknown_group", f"no vote group named {group!r}")
    state = await current_state(ctx.storage, found, item, None)
    return {"group": found.name, "item": item, "type": found.type, **_totals(state)}


def _totals(state: dict[str, Any]) -> dict[str, Any]:
    return {"total": state["total"], "startEnd": state["startEnd"]}


def cached(request: Request, body: bytes, media_type: str) -> Response:
    """`body` with its ETag and cache headers, or 304 when the client holds it already."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={COUNTS_MAX_AGE}",
        "Access-Control-Allow-Origin": "*",
    }
    held = request.headers.get("if-none-match", "")
    tags = {t.strip().removeprefix("W/") for t in held.split(",")}
    if etag in tags or "*" in tags:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _xml(text: str) -> str:
    """Text for XML character data (what xml.sax.saxutils.escape does, without importing
    the XML and URL libraries it comes with)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def badge(label: str, value: str) -> bytes:
    """A flat two-part badge (label | value); widths from a rough per-character estimate."""
    lw, vw = 10 + 7 * len(label), 10 + 7 * len(value)
    w = lw + vw
    lab, val = _xml(label), _xml(value)
    attr = _xml(f"{label}: {value}").replace('"', "&quot;")
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" '
        f'aria-label="{attr}">'
        f"<title>{lab}: {val}</title>"
        f'<rect width="{lw}" height="20" rx="3" fill="#555"/>'
        f'<rect x="{lw}" width="{vw}" height="20" rx="3" fill="#e11d48"/>'
        f'<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" '
        f'text-anchor="middle">'
        f'<text x="{lw / 2}" y="14">{lab}</text><text x="{lw + vw / 2}" y="14">{val}</text></g>'
        "</svg>"
    )
    return svg.encode("utf-8")


def badge_value(counts: dict[str, Any]) -> str:
    total = counts["total"]
    if counts["type"] == RANGE:
        if not total["voters"]:
            return "no votes"
        return f"{total['mean']:.1f}/{counts['startEnd']['end']} ({total['voters']})"
    return str(total["count"])


def build_public_router() -> APIRouter:
    r = APIRouter(prefix=PREFIX, tags=["public"], dependencies=[Depends(check_fields)])

    @r.get(
        "/counts",
        response_class=Response,
        responses={
            200: {"content": {"application/json": {}}, "description": "the item's totals"},
            304: {"description": "not modified (If-None-Match)"},
        },
    )
    async def counts(request: Request, key: str, group: str, item: str) -> Response:
        """An item's totals: {group, item, type, total, startEnd}; cacheable for a few
        seconds (ETag, If-None-Match)."""
        answer = await counts_of(request, key, group, item)
        return cached(request, jsonfast.dumps(answer).encode("utf-8"), "application/json")

    @r.get(
        "/badge.svg",
        response_class=Response,
        responses={
            200: {"content": {"image/svg+xml": {}}, "description": "the item's count as a badge"},
            304: {"description": "not modified (If-None-Match)"},
        },
    )
    async def badge_svg(request: Request, key: str, group: str, item: str) -> Response:
        """The item's count (likes, score; stars: mean/end (voters)) as an SVG badge."""
        answer = await counts_of(request, key, group, item)
        return cached(request, badge(answer["group"], badge_value(answer)), "image/svg+xml")

    return r
