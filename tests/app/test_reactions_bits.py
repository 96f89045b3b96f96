"""A reactions group's 31 bits: a removed id keeps its bit while a voter holds it; once none
does, a new id may take it; past that the error names the limit and the ids still held."""

from __future__ import annotations

import pytest

from clickvote import reactions
from clickvote.reactions import MAX_BITS, ReactionsError, define


def ids(names: list[str]) -> list[dict[str, str]]:
    return [{"id": n} for n in names]


def crowded() -> reactions.Reactions:
    """A group that defined 31 ids over its life and offers the last 11 of them now."""
    r = define(ids([f"a{i}" for i in range(20)]), 1, None)
    return define(ids([f"b{i}" for i in range(11)]), 1, r)


def test_a_full_group_names_the_limit_and_the_ids_still_held() -> None:
    r = crowded()
    assert len(r.bits) == MAX_BITS
    with pytest.raises(ReactionsError) as refused:
        define(ids(["b0", "new"]), 1, r, frozenset({"b1"}))  # b1: offered until now
    assert refused.value.field == "reactions"
    assert f"at most {MAX_BITS} reaction ids" in refused.value.message
    assert "removed ids still held: a0, a1," in refused.value.message


def test_a_new_id_takes_the_bit_of_a_removed_id_no_voter_holds() -> None:
    r = crowded()
    bits = dict(r.bits)
    again = define(ids(["b0", "new", "a1"]), 1, r, frozenset({"a0", "a1"}))
    moved = dict(again.bits)
    assert moved["new"] == bits["a0"] and "a0" not in moved  # a0's bit, freed
    assert moved["a1"] == bits["a1"] and moved["b0"] == bits["b0"]  # listed again: kept
    assert len(moved) == MAX_BITS
    # ids removed by this very change are not free yet (votes may still reach them)
    with pytest.raises(ReactionsError):
        define(ids(["other"]), 1, again, frozenset({"b0", "new"}))
    assert dict(define(ids(["other"]), 1, again, frozenset({"b1"})).bits)["other"] == bits["b1"]
    assert reactions.needs_room(ids(["other"]), again)
    assert not reactions.needs_room(ids(["b3", "a1"]), again)


def test_room_is_judged_on_any_input() -> None:
    r = crowded()
    odd = [{"id": ["x"]}, {"id": {"a": 1}}, "x", None, {"label": "no id"}]
    assert not reactions.needs_room(odd, r)
    assert not reactions.needs_room("not a list", r) and not reactions.needs_room(odd, None)
