"""Voting semantics: validation against the stored group, totals, and applying a vote.

- `single`: values 1, 0, -1 (a Like uses 1/0, Upvote/Downvote 1/-1/0); 0 removes the vote;
  count = net sum of the current values.
- `range`: values start..end; 0 removes; count = users with a value, sum = their sum,
  avg = ceil(sum / count) (0 when count is 0), mean = exact sum / count.
"""

from __future__ import annotations

from typing import Any

from clickvote.errors import ClickVoteError
from clickvote.fields import MAX_USER_ID as MAX_USER_ID  # re-exported
from clickvote.fields import MAX_VOTE_TO as MAX_VOTE_TO
from clickvote.storage.base import Group, Storage, Tally, VoteOutcome

SINGLE = "single"
RANGE = "range"
TYPES = (SINGLE, RANGE)
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


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


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


def voter_state(group: Group, value: int, tally: Tally) -> dict[str, Any]:
    """What `get-votes` answers: {voted, voteValue, total: {count, avg, ...}, startEnd}."""
    return {
        "voted": value != 0,
        "voteValue": value,
        "total": totals(group, tally),
        "startEnd": start_end(group),
    }


def responder(group: Group) -> Any:
    def respond(outcome: VoteOutcome) -> dict[str, Any]:
        state = voter_state(group, outcome.value, outcome.after)
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
    return {k: response[k] for k in ("voted", "voteValue", "total", "startEnd")}


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
    checked = validate_value(group, value)
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
    )


async def current_state(
    storage: Storage, group: Group, vote_to: str, voter: str | None, adopt: str | None = None
) -> dict:
    value, tally = await storage.get_vote(group.id, vote_to, voter or "", adopt)
    return voter_state(group, value if voter else 0, tally)
