"""Voting semantics: validation against the stored group, totals, and applying a vote.

- `single`: values 1, 0, -1 (a Like uses 1/0, Upvote/Downvote 1/-1/0); 0 removes the vote;
  count = net sum of the current values.
- `range`: values start..end; 0 removes; count = users with a value, sum = their sum,
  avg = ceil(sum / count) (0 when count is 0), mean = exact sum / count.
- `reactions`: value = one of the group's reaction ids, which toggles it for the voter (held
  reactions stay at most maxPerVoter); totals {reactions: {id: voters}, voters, count = the
  reactions held}; a voter's voteValue = the ids they hold (clickvote/reactions.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clickvote import reactions as defs
from clickvote.errors import ClickVoteError
from clickvote.fields import MAX_USER_ID as MAX_USER_ID  # re-exported
from clickvote.fields import MAX_VOTE_TO as MAX_VOTE_TO
from clickvote.storage.base import Group, Storage, Tally, VoteOutcome

SINGLE = "single"
RANGE = "range"
REACTIONS = "reactions"
TYPES = (SINGLE, RANGE, REACTIONS)
RANGE_MIN = 0
RANGE_MAX = 1_000_000


VoteError = ClickVoteError  # the voting code's name for it (codes: clickvote/errors.py)


def validate_value(group: Group, value: Any) -> int:
    """The value as int, checked against the STORED group (the client's `type` is ignored)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise VoteError("bad_value", "value must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise VoteError("bad_value", "value must be an integer")
        value = int(value)
    if value == 0:
        return 0
    if group.type == SINGLE:
        if value not in (1, -1):
            raise VoteError("bad_value", "value must be 1, 0 or -1 for this group")
        return value
    assert group.start is not None and group.end is not None
    if not group.start <= value <= group.end:
        raise VoteError(
            "bad_value", f"value must be between {group.start} and {group.end} (or 0 to remove)"
        )
    return value


def toggler(group: Group, value: Any) -> Callable[[int], int]:
    """A reactions vote: the function from the voter's stored value to the new one."""
    r = group.reactions
    assert r is not None
    bit = defs.bit_of(r, value) if isinstance(value, str) else None
    if bit is None:
        offered = ", ".join(x.id for x in r.items)
        raise VoteError("bad_value", f"value must be one of this group's reactions: {offered}")

    def combine(previous: int) -> int:
        value = previous ^ (1 << bit)
        if value & (1 << bit) and len(defs.held(r, value)) > r.max_per_voter:
            if r.max_per_voter > 1:
                raise VoteError(
                    "too_many_reactions",
                    f"a voter may hold at most {r.max_per_voter} reactions here",
                )
            value = 1 << bit  # one per voter: the new reaction replaces the old one
        return value

    return combine


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def reaction_totals(group: Group, tally: Tally, bit_counts: tuple[int, ...]) -> dict[str, Any]:
    assert group.reactions is not None
    per_id = defs.counts(group.reactions, bit_counts)
    return {"reactions": per_id, "count": sum(per_id.values()), "voters": tally.voters}


def totals(group: Group, tally: Tally) -> dict[str, Any]:
    mean = round(tally.total / tally.voters, 6) if tally.voters else 0
    if group.type == RANGE:
        avg = ceil_div(tally.total, tally.voters) if tally.voters else 0
        return {
            "count": tally.voters,
            "avg": avg,
            "mean": mean,
            "sum": tally.total,
            "voters": tally.voters,
        }
    return {
        "count": tally.total,
        "avg": 0,
        "mean": mean,
        "sum": tally.total,
        "voters": tally.voters,
    }


def start_end(group: Group) -> dict[str, int]:
    if group.type == RANGE and group.start is not None and group.end is not None:
        return {"start": group.start, "end": group.end}
    return {"start": -1, "end": 1}


def voter_state(
    group: Group, value: int, tally: Tally, bit_counts: tuple[int, ...] = ()
) -> dict[str, Any]:
    """What `get-votes` answers: {voted, voteValue, total: {count, avg, ...}, startEnd}; for a
    reactions group voteValue lists the voter's reaction ids and total is reaction_totals."""
    if group.reactions is not None:
        mine = defs.held(group.reactions, value)
        return {
            "voted": bool(mine),
            "voteValue": mine,
            "total": reaction_totals(group, tally, bit_counts),
            "startEnd": start_end(group),
            "reactions": defs.public(group.reactions)["reactions"],  # [{id, label}], in order
        }
    return {
        "voted": value != 0,
        "voteValue": value,
        "total": totals(group, tally),
        "startEnd": start_end(group),
    }


def responder(group: Group) -> Any:
    def respond(outcome: VoteOutcome) -> dict[str, Any]:
        state = voter_state(group, outcome.value, outcome.after, outcome.bit_counts)
        if group.reactions is not None:
            before = defs.held(group.reactions, outcome.previous)
            state["previous"] = before
            state["initial"] = state["total"]["count"] - len(state["voteValue"]) + len(before)
        else:
            state["previous"] = outcome.previous
            state["initial"] = totals(group, outcome.before)["count"]
        state["seq"] = outcome.seq  # for the server's broadcast order; never sent to pages
        return state

    return respond


def poster_message(response: dict[str, Any]) -> dict[str, Any]:
    """What the other pages watching the item get: {total: {initial, count, avg}, poster:
    {value}}. Never the voter's id: a page that learnt it could act as that voter where plain
    ids are accepted (@clickvote/react 0.0.8 learns its own state from own_message instead)."""
    return {
        "total": {"initial": response["initial"], **response["total"]},
        "poster": {"value": response["voteValue"]},
    }


def own_message(response: dict[str, Any]) -> dict[str, Any]:
    """What the voter's own pages get: their new value plus the totals."""
    keys = ("voted", "voteValue", "total", "startEnd", "reactions")
    return {k: response[k] for k in keys if k in response}


async def cast_vote(
    storage: Storage,
    group: Group,
    vote_to: str,
    voter: str,
    value: Any,
    msg_id: str | None = None,
    meta: dict[str, str | None] | None = None,
    adopt: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Validate and apply one vote atomically. Returns (response, replayed). `adopt`: see
    Storage.get_vote."""
    combine = toggler(group, value) if group.reactions is not None else None
    checked = 0 if combine is not None else validate_value(group, value)
    return await storage.apply_vote(
        group.env_id,
        group.id,
        vote_to,
        voter,
        checked,
        msg_id,
        meta or {},
        responder(group),
        adopt,
        combine,
    )


async def current_state(
    storage: Storage, group: Group, vote_to: str, voter: str | None, adopt: str | None = None
) -> dict:
    value, tally = await storage.get_vote(group.id, vote_to, voter or "", adopt)
    counted = await storage.bit_counts(group.id, vote_to) if group.reactions is not None else ()
    return voter_state(group, value if voter else 0, tally, counted)
