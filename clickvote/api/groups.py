"""Vote groups of the current environment: list (paged), create, read, change, delete.
Changing or deleting a group empties the caches of every instance."""

from __future__ import annotations

import math
from typing import Any

from clickvote import reactions as defs
from clickvote.accounts import Refused, check_name
from clickvote.api.errors import ApiError
from clickvote.api.schema import (
    Answer,
    Operations,
    array,
    const,
    enum,
    integer,
    merge,
    nullable,
    obj,
    string,
)
from clickvote.api.session import Call
from clickvote.context import Context
from clickvote.storage import Group
from clickvote.storage.base import Reactions
from clickvote.votes import RANGE, RANGE_MAX, RANGE_MIN, REACTIONS, TYPES

OPERATIONS = Operations()
TYPE = enum(*TYPES)
REACTION = obj({"id": string(1, defs.MAX_ID)}, {"label": string(1, defs.MAX_LABEL)}, closed=True)
REACTION_LIST = array(REACTION) | {"minItems": 1, "maxItems": defs.MAX_REACTIONS}
MAX_PER_VOTER = integer(1, defs.MAX_REACTIONS)
# what a new or changed list may be (checked by clickvote.reactions.define)
REACTIONS_IN = nullable(array(obj())) | {
    "description": f"[{{id, label}}], 1..{defs.MAX_REACTIONS} of them, in the owner's order. "
    f"A group keeps at most {defs.MAX_BITS} ids, offered or removed: a removed id keeps its "
    "place (and its counts, should it come back) while any voter holds it; past that a new id "
    "is refused (422, field reactions)."
}
GROUP = obj(
    {
        "id": string(),
        "_id": string(),
        "name": string(),
        "type": TYPE,
        "start": nullable(integer()),
        "end": nullable(integer()),
        "createdAt": integer(),
    },
    {"reactions": REACTION_LIST, "maxPerVoter": MAX_PER_VOTER},  # reactions groups
    closed=True,
)
STATS = obj({"voters": integer(0), "score": integer(), "items": integer(0), "clicks": integer(0)})
GROUP_STATS = merge(GROUP, STATS)
PAGE = obj(
    {
        "items": array(GROUP_STATS),
        "total": integer(0),
        "page": integer(1),
        "limit": integer(1),
        "pages": integer(1),
    },
    closed=True,
)
GROUP_ID = obj({"group_id": string(1, pattern="^[^/]+$")})
NEW = obj(
    {"name": string(), "type": TYPE},
    {
        "start": nullable(integer()),
        "end": nullable(integer()),
        "reactions": REACTIONS_IN,
        "maxPerVoter": nullable(integer()),
    },
)
PATCH = obj(
    optional={
        "name": nullable(string()),
        "type": nullable(TYPE),
        "start": nullable(integer()),
        "end": nullable(integer()),
        "reactions": REACTIONS_IN,
        "maxPerVoter": nullable(integer()),
    }
)


def group_json(group: Group, stats: dict[str, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": group.id,
        "_id": group.id,
        "name": group.name,
        "type": group.type,
        "start": group.start,
        "end": group.end,
        "createdAt": group.created_at,
    }
    if group.reactions is not None:
        out.update(defs.public(group.reactions))
    if stats is not None:
        out.update(stats)
    return out


def check_group(
    name: str, type_: str, start: int | None, end: int | None
) -> tuple[str, str, int | None, int | None]:
    name = check_name(name)
    if type_ not in TYPES:
        raise Refused("type", "must be one of " + ", ".join(TYPES))
    if type_ != RANGE:
        return name, type_, None, None
    if start is None:
        raise Refused("start", "required for a range group")
    if end is None:
        raise Refused("end", "required for a range group")
    if start < RANGE_MIN:
        raise Refused("start", f"must be at least {RANGE_MIN}")
    if end > RANGE_MAX:
        raise Refused("end", f"must be at most {RANGE_MAX}")
    if start >= end:
        raise Refused("start", "must be less than end")
    return name, type_, start, end


def check_reactions(
    type_: str,
    items: Any,
    max_per_voter: Any,
    old: Reactions | None,
    free: frozenset[str] = frozenset(),
) -> Reactions | None:
    """A reactions group's checked definition (None for the other types); ids `old` knew keep
    their counts (`free`: see clickvote.reactions.define)."""
    if type_ != REACTIONS:
        return None
    if items is None:
        if old is None:
            raise Refused("reactions", "required for a reactions group")
        items = defs.public(old)["reactions"]
    if max_per_voter is None:
        max_per_voter = old.max_per_voter if old is not None else 1
    try:
        return defs.define(items, max_per_voter, old, free)
    except defs.ReactionsError as exc:
        raise Refused(exc.field, exc.message) from None


async def update_group(ctx: Context, group: Group, given: dict[str, Any]) -> Group:
    """`group` with the `given` fields changed (its type and range only while it has no
    votes: 409; a reactions group's reactions at any time), everywhere at once (the caches are
    emptied)."""
    name, type_, start, end = check_group(
        group.name if given.get("name") is None else str(given["name"]),
        given.get("type") or group.type,
        given.get("start", group.start),
        given.get("end", group.end),
    )
    changes: dict[str, Any] = {}
    if name != group.name:
        changes["name"] = name
    items, old = given.get("reactions"), group.reactions
    free = await free_ids(ctx, group) if defs.needs_room(items, old) else frozenset()
    defined = check_reactions(type_, items, given.get("maxPerVoter"), old, free)
    if defined != group.reactions:
        changes["reactions"] = defined
    shape = {"type": type_, "start": start, "end": end}
    if shape != {"type": group.type, "start": group.start, "end": group.end}:
        if await ctx.storage.group_has_votes(group.id):
            raise ApiError(409, "The type or range of a group with votes can't change", "type")
        changes.update(shape)
    if not changes:
        return group
    updated = await ctx.storage.update_group(group.env_id, group.id, changes)
    await ctx.changed()
    return updated


async def free_ids(ctx: Context, group: Group) -> frozenset[str]:
    """The ids the group no longer offers that no voter holds (their bits may be reused)."""
    assert group.reactions is not None
    holders = await ctx.storage.bit_holders(group.id)
    bits = dict(group.reactions.bits)
    return frozenset(rid for rid in defs.removed(group.reactions) if not holders.get(bits[rid]))


async def delete_group(ctx: Context, env_id: str, group_id: str) -> bool:
    """Delete a group of `env_id` everywhere at once (the caches are emptied); False when
    there is no such group."""
    if not await ctx.storage.delete_group(env_id, group_id):
        return False
    await ctx.changed()
    return True


async def owned_group(call: Call) -> Group:
    group = await call.ctx.storage.get_group(call.auth.env.id, call.params["group_id"])
    if group is None:
        raise ApiError(404, "Vote group not found")
    return group


@OPERATIONS(
    "GET",
    "/votes/",
    tag="votes",
    summary="The current environment's vote groups, a page at a time, with their counts",
    query=obj(
        optional={"page": integer(1, 1_000_000, default=1), "limit": integer(1, 100, default=10)}
    ),
    session=True,
    answers={200: Answer("a page of groups", PAGE)},
)
async def votes_list(call: Call) -> dict[str, Any]:
    ctx, page, limit = call.ctx, call.params["page"], call.params["limit"]
    items, total = await ctx.storage.list_groups(call.auth.env.id, (page - 1) * limit, limit)
    stats = await ctx.storage.group_stats([g.id for g in items])
    return {
        "items": [group_json(g, stats.get(g.id)) for g in items],
        "total": total,
        "page": page,
        "limit": limit,
        "pages": max(1, math.ceil(total / limit)),
    }


@OPERATIONS(
    "POST",
    "/votes/",
    tag="votes",
    summary="Create a vote group (single: like/updown; range: stars from start to end; "
    "reactions: the given reaction ids, maxPerVoter of them per voter)",
    body=NEW,
    session=True,
    csrf=True,
    answers={200: Answer("the new group", GROUP)},
    errors=(409,),
)
async def votes_create(call: Call) -> dict[str, Any]:
    b = call.body
    name, type_, start, end = check_group(b["name"], b["type"], b.get("start"), b.get("end"))
    defined = check_reactions(type_, b.get("reactions"), b.get("maxPerVoter"), None)
    group = await call.ctx.storage.create_group(call.auth.env.id, name, type_, start, end, defined)
    return group_json(group)


@OPERATIONS(
    "GET",
    "/votes/{group_id}",
    tag="votes",
    summary="One vote group with its counts",
    path_params=GROUP_ID,
    session=True,
    answers={200: Answer("the group", GROUP_STATS)},
)
async def votes_get(call: Call) -> dict[str, Any]:
    group = await owned_group(call)
    stats = await call.ctx.storage.group_stats([group.id])
    return group_json(group, stats[group.id])


@OPERATIONS(
    "PUT",
    "/votes/{group_id}",
    tag="votes",
    summary="Rename a vote group, change its reactions (counts stay with their ids), or its "
    "type or range while it has no votes",
    path_params=GROUP_ID,
    body=PATCH,
    session=True,
    csrf=True,
    answers={200: Answer("the group", GROUP)},
    errors=(409,),
)
async def votes_update(call: Call) -> dict[str, Any]:
    return group_json(await update_group(call.ctx, await owned_group(call), call.body))


@OPERATIONS(
    "DELETE",
    "/votes/{group_id}",
    tag="votes",
    summary="Delete a vote group (its name can be used again)",
    path_params=GROUP_ID,
    session=True,
    csrf=True,
    answers={200: Answer("deleted", obj({"id": string(), "deleted": const(True)}, closed=True))},
)
async def votes_delete(call: Call) -> dict[str, Any]:
    group_id = call.params["group_id"]
    if not await delete_group(call.ctx, call.auth.env.id, group_id):
        raise ApiError(404, "Vote group not found")
    return {"id": group_id, "deleted": True}
