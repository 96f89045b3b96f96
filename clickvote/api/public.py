"""What embeds and other sites read without a session (any origin may): an item's state for a
voter (`/api/votes`), voter tokens, and counts without JavaScript: an item's totals as JSON
and as an SVG badge (`/public/v1/`).

The counts (`GET /public/v1/counts?key=pb_..&group=likes&item=post-42` -> {group, item, type,
total, startEnd}, `total` as get-votes' total) and the badge carry `Cache-Control: public,
max-age=COUNTS_MAX_AGE` (a CDN or a browser keeps them a few seconds) and an `ETag` of the
answer (`If-None-Match` -> 304). All of these take from the per-IP bucket of get-votes. The
embed draws its first frame from the counts, and a site can render them into the element's
light DOM (seen where scripts are off).
"""

from __future__ import annotations

import hashlib
import html
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from clickvote import identity, jsonfast, voters
from clickvote.api.analytics import TOTALS
from clickvote.api.groups import REACTION, TYPE
from clickvote.api.schema import Answer, Operations, array, boolean, integer, obj, string
from clickvote.api.session import Call, client_ip, throttle
from clickvote.fields import MAX_KEY, MAX_NAME, MAX_VOTE_TO, FieldError, check_text
from clickvote.votes import RANGE, VoteError, current_state

OPERATIONS = Operations()
COUNTS_MAX_AGE = 5  # seconds a cache may serve an answer
START_END = obj({"start": integer(), "end": integer()}, closed=True)
STATE = obj(
    {
        "voted": boolean(),
        "voteValue": {"anyOf": [integer(), array(string())]},  # reactions: the ids held
        "total": TOTALS,
        "startEnd": START_END,
    },
    {"reactions": array(REACTION)},  # a reactions group's reactions, in the owner's order
    closed=True,
)
COUNTS = obj(
    {"group": string(), "item": string(), "type": TYPE, "total": TOTALS, "startEnd": START_END},
    {"reactions": array(REACTION)},
    closed=True,
)
ITEM = obj(
    {"key": string(max_length=MAX_KEY), "group": string(max_length=MAX_NAME), "item": string()}
)
CACHED = {"ETag": string(), "Cache-Control": string()}
NOT_MODIFIED = Answer("not modified (If-None-Match)", headers={"ETag": string()})
IF_NONE_MATCH = obj(optional={"If-None-Match": string()})


@OPERATIONS(
    "GET",
    "/api/votes",
    tag="public",
    summary="An item's state (totals; the voter's own vote where a voter is given)",
    query=obj(
        {"key": string(max_length=MAX_KEY), "id": string(), "voteTo": string()},
        {"userId": string(), "signature": string(), "voterToken": string()},
    ),
    answers={200: Answer("the item's state", STATE)},
    errors=(400, 403, 404, 429),
)
async def public_votes(call: Call) -> dict[str, Any]:
    ctx, p = call.ctx, call.params
    await throttle(ctx.ip_limiter, "ip|" + client_ip(call.request))  # as the socket's get-votes
    env = await voters.env_from_key(ctx, p["key"])
    group = await ctx.storage.get_group_by_name(env.id, p["id"])
    if group is None:
        raise VoteError("unknown_group", f"no vote group named {p['id']!r}")
    voter = voters.voter(
        ctx, env, p.get("userId"), p.get("signature"), p.get("voterToken"), required=False
    )
    if voter is None:
        return await current_state(ctx.storage, group, p["voteTo"], None)
    return await current_state(ctx.storage, group, p["voteTo"], voter.key, voter.legacy)


@OPERATIONS(
    "GET",
    "/api/voter-token",
    tag="public",
    summary="A new anonymous voter's server-signed token (where the environment accepts them)",
    query=obj({"key": string(max_length=MAX_KEY)}),
    answers={
        200: Answer(
            "the token",
            obj({"voterId": string(), "token": string(), "expiration": integer()}, closed=True),
        )
    },
    errors=(403, 404, 429),
)
async def voter_token(call: Call) -> dict[str, Any]:
    ctx = call.ctx
    await throttle(ctx.ip_limiter, "ip|" + client_ip(call.request), cost=5)
    env = await voters.env_from_key(ctx, call.params["key"])
    identity.check_voter_token(env.identities)
    voter_id, token, expiration = ctx.box.voter_token(env.id, ctx.settings.voter_token_ttl)
    return {"voterId": voter_id, "token": token, "expiration": expiration}


def check_item(item: str) -> str:
    """An item id (the events' `voteTo`): 1..MAX_VOTE_TO characters."""
    check_text("item", item)
    if not 1 <= len(item) <= MAX_VOTE_TO:
        raise FieldError("item", f"must be 1..{MAX_VOTE_TO} characters")
    return item


async def counts_of(call: Call) -> dict[str, Any]:
    ctx, p = call.ctx, call.params
    item = check_item(p["item"])
    await throttle(ctx.ip_limiter, "ip|" + client_ip(call.request))  # as /api/votes
    env = await voters.env_from_key(ctx, p["key"])
    found = await ctx.get_group_by_name(env.id, p["group"])
    if found is None:
        raise VoteError("unknown_group", f"no vote group named {p['group']!r}")
    state = await current_state(ctx.storage, found, item, None)
    return {
        "group": found.name,
        "item": item,
        "type": found.type,
        "total": state["total"],
        "startEnd": state["startEnd"],
        **({"reactions": state["reactions"]} if "reactions" in state else {}),
    }


def cached(request: Request, body: bytes, media_type: str) -> Response:
    """`body` with its ETag and cache headers, or 304 when the client holds it already."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={COUNTS_MAX_AGE}",
    }
    held = request.headers.get("if-none-match", "")
    tags = {t.strip().removeprefix("W/") for t in held.split(",")}
    if etag in tags or "*" in tags:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def badge(label: str, value: str) -> bytes:
    """A flat two-part badge (label | value); widths from a rough per-character estimate."""
    lw, vw = 10 + 7 * len(label), 10 + 7 * len(value)
    w = lw + vw
    # html.escape: XML character data and attribute values (the XML library would also
    # load the URL and email modules at start)
    lab, val = html.escape(label, quote=False), html.escape(value, quote=False)
    attr = html.escape(f"{label}: {value}")
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


@OPERATIONS(
    "GET",
    "/public/v1/counts",
    tag="public",
    summary="An item's totals, cacheable for a few seconds (ETag, If-None-Match)",
    query=ITEM,
    headers=IF_NONE_MATCH,
    answers={
        200: Answer("the item's totals", COUNTS, headers=CACHED),
        304: NOT_MODIFIED,
    },
    errors=(400, 403, 404, 429),
)
async def counts(call: Call) -> Response:
    answer = await counts_of(call)
    return cached(call.request, jsonfast.dumps(answer).encode("utf-8"), "application/json")


@OPERATIONS(
    "GET",
    "/public/v1/badge.svg",
    tag="public",
    summary="The item's count (likes, score; stars: mean/end (voters)) as an SVG badge",
    query=ITEM,
    headers=IF_NONE_MATCH,
    answers={
        200: Answer("the badge", string(), media="image/svg+xml", headers=CACHED),
        304: NOT_MODIFIED,
    },
    errors=(400, 403, 404, 429),
)
async def badge_svg(call: Call) -> Response:
    answer = await counts_of(call)
    return cached(call.request, badge(answer["group"], badge_value(answer)), "image/svg+xml")
