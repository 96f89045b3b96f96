"""Analytics of the current environment's votes: hourly counts (of a group, an item, or all),
the items voted on, a group's counts with its leading items, the votes each abuse layer
refused per day."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from clickvote import reactions as defs
from clickvote.abuse import DAY_MS, LAYERS, day_of
from clickvote.accounts import Refused
from clickvote.api.errors import ApiError
from clickvote.api.groups import GROUP_STATS, group_json
from clickvote.api.schema import (
    Answer,
    Operations,
    array,
    enum,
    integer,
    merge,
    number,
    obj,
    string,
)
from clickvote.api.session import Call
from clickvote.context import Context
from clickvote.fields import MAX_NAME, MAX_VOTE_TO
from clickvote.storage import Env, Group
from clickvote.votes import reaction_totals, totals

OPERATIONS = Operations()
RANGES = {"1d": 1, "7d": 7, "30d": 30, "1y": 365}  # dateRange -> days
DATE_RANGE = enum(*RANGES, default="7d")
HOURLY = array(obj({"_id": string(), "hour": integer(), "count": integer(0)}, closed=True))
GROUP_NAME = obj({"name": string(1, pattern="^[^/]+$")})
TOTALS = obj(
    {"count": integer(), "voters": integer(0)},
    {
        "avg": integer(),  # single and range groups
        "mean": number(),
        "sum": integer(),
        "reactions": {"type": "object", "additionalProperties": integer(0)},  # reactions groups
    },
    closed=True,
)
TOP = array(merge(obj({"voteTo": string()}), TOTALS))


def iso_hour(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:00:00Z")


async def group_by_name_or_id(ctx: Context, env: Env, name: str) -> Group:
    group = await ctx.storage.get_group_by_name(env.id, name)
    if group is None:
        group = await ctx.storage.get_group(env.id, name)
    if group is None:
        raise ApiError(404, f"Vote group {name!r} not found")
    return group


async def hourly(
    ctx: Context, env: Env, group: Group | None, vote_to: str | None, date_range: str
) -> list[dict[str, Any]]:
    """Votes per hour over `date_range` ({_id: ISO hour, hour: ms, count})."""
    since = int(time.time() * 1000) - RANGES[date_range] * 24 * 3600 * 1000
    rows = await ctx.storage.analytics(env.id, group.id if group else None, vote_to or None, since)
    return [{"_id": iso_hour(h), "hour": h, "count": c} for h, c in rows]


@OPERATIONS(
    "GET",
    "/votes/{name}/analytics",
    tag="analytics",
    summary="A vote group's votes per hour (of one item with voteTo)",
    path_params=GROUP_NAME,
    query=obj(optional={"dateRange": DATE_RANGE, "voteTo": string(max_length=MAX_VOTE_TO)}),
    session=True,
    answers={200: Answer("votes per hour", HOURLY)},
)
async def votes_analytics(call: Call) -> list[dict[str, Any]]:
    group = await group_by_name_or_id(call.ctx, call.auth.env, call.params["name"])
    p = call.params
    return await hourly(call.ctx, call.auth.env, group, p.get("voteTo"), p["dateRange"])


@OPERATIONS(
    "GET",
    "/votes/{name}/to",
    tag="analytics",
    summary="The items voted on in a vote group",
    path_params=GROUP_NAME,
    session=True,
    answers={200: Answer("item ids", array(string()))},
)
async def votes_to(call: Call) -> list[str]:
    group = await group_by_name_or_id(call.ctx, call.auth.env, call.params["name"])
    return await call.ctx.storage.distinct_vote_to(group.id)


@OPERATIONS(
    "GET",
    "/votes/{name}/stats",
    tag="analytics",
    summary="A vote group's counts and its leading items (`items` is the number of items)",
    path_params=GROUP_NAME,
    query=obj(
        optional={
            "limit": integer(1, 1000, default=50),
            # a reactions group: rank by this reaction id's voters (default: all reactions held)
            "reaction": string(1, defs.MAX_ID),
        }
    ),
    session=True,
    answers={200: Answer("the counts", merge(GROUP_STATS, obj({"top": TOP})))},
)
async def votes_stats(call: Call) -> dict[str, Any]:
    ctx = call.ctx
    group = await group_by_name_or_id(ctx, call.auth.env, call.params["name"])
    stats = (await ctx.storage.group_stats([group.id]))[group.id]
    limit = call.params["limit"]
    if group.reactions is not None:
        top = await reactions_top(ctx, group, call.params.get("reaction"), limit)
    else:
        items = await ctx.storage.item_tallies(group.id, limit)
        top = [{"voteTo": vt, **totals(group, t)} for vt, t in items]
    return {**group_json(group, stats), "top": top}


async def reactions_top(
    ctx: Context, group: Group, rank: str | None, limit: int
) -> list[dict[str, Any]]:
    """A reactions group's leading items, each with its per-reaction counts: the most
    reactions held (on the ids it offers) first, or the most voters holding `rank`."""
    r = group.reactions
    assert r is not None
    rank_bit = defs.bit_of(r, rank) if rank is not None else None
    if rank is not None and rank_bit is None:
        offered = ", ".join(x.id for x in r.items)
        raise Refused("reaction", f"reaction must be one of this group's: {offered}")
    bits = [dict(r.bits)[x.id] for x in r.items]
    ranked = await ctx.storage.reaction_top(group.id, bits, rank_bit, limit)
    return [{"voteTo": vt, **reaction_totals(group, t, counted)} for vt, t, counted in ranked]


@OPERATIONS(
    "GET",
    "/analytics/data",
    tag="analytics",
    summary="Votes per hour in the current environment (of a group, of an item)",
    query=obj(
        optional={
            "dateRange": DATE_RANGE,
            "group": string(max_length=MAX_NAME),
            "voteTo": string(max_length=MAX_VOTE_TO),
        }
    ),
    session=True,
    answers={200: Answer("votes per hour", HOURLY)},
    errors=(404,),
)
async def analytics_all(call: Call) -> list[dict[str, Any]]:
    p, env = call.params, call.auth.env
    group = await group_by_name_or_id(call.ctx, env, p["group"]) if p.get("group") else None
    return await hourly(call.ctx, env, group, p.get("voteTo"), p["dateRange"])


REFUSALS = array(
    obj(
        {"day": string(), "dayStart": integer(), **{layer: integer(0) for layer in LAYERS}},
        closed=True,
    )
)


@OPERATIONS(
    "GET",
    "/analytics/refusals",
    tag="analytics",
    summary="Votes refused per abuse layer and day in the current environment (UTC days)",
    query=obj(optional={"dateRange": DATE_RANGE}),
    session=True,
    answers={200: Answer("refused votes per day", REFUSALS)},
)
async def analytics_refusals(call: Call) -> list[dict[str, Any]]:
    ctx = call.ctx
    await ctx.refusals.flush(ctx.storage)  # this instance's latest, not only the last batch
    since = day_of(time.time() * 1000) - (RANGES[call.params["dateRange"]] - 1) * DAY_MS
    days: dict[int, dict[str, Any]] = {}
    for day, layer, n in await ctx.storage.refusals(call.auth.env.id, since):
        blank = {"day": iso_day(day), "dayStart": day, **dict.fromkeys(LAYERS, 0)}
        row = days.setdefault(day, blank)
        if layer in LAYERS:
            row[layer] += n
    return list(days.values())


def iso_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")
