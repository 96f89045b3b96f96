"""`reactions` groups: the owner's reaction ids (emoji or short names, each with a label), in the
owner's order, and how many of them one voter may hold on an item at once (maxPerVoter).

A voter's reactions on an item are stored as one integer, a bit set. Each id keeps the bit it
got when first defined: a new label or another order never moves a count, and a removed id
keeps its bit while any voter holds it (an id defined again gets its bit and its votes back).
A group has MAX_BITS bits: once all are taken, a new id takes the bit of an id removed by an
earlier change that no voter holds any more (`free`), and is refused when there is none.
Storage keeps the voters per bit of each item (reaction_counts, bumped by each vote in its
transaction: Storage.bit_counts); totals are reported per id.
"""

from __future__ import annotations

import json
from typing import Any

from clickvote.fields import text_problem
from clickvote.storage.base import Reaction, Reactions

MAX_BITS = 31  # a stored value is a PostgreSQL INTEGER
MAX_REACTIONS = 20
MAX_ID = 32
MAX_LABEL = 64


class ReactionsError(ValueError):
    """A definition the server refuses; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def encode(r: Reactions | None) -> str | None:
    if r is None:
        return None
    return json.dumps(
        {
            "items": [{"id": x.id, "label": x.label} for x in r.items],
            "maxPerVoter": r.max_per_voter,
            "bits": dict(r.bits),
        },
        ensure_ascii=False,
    )


def decode(text: str | None) -> Reactions | None:
    if not text:
        return None
    data = json.loads(text)
    return Reactions(
        items=tuple(Reaction(x["id"], x["label"]) for x in data["items"]),
        max_per_voter=int(data["maxPerVoter"]),
        bits=tuple((k, int(v)) for k, v in data["bits"].items()),
    )


def _text(value: Any, field: str, most: int) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= most:
        raise ReactionsError(field, f"{field} must be a string of 1..{most} characters")
    problem = text_problem(value)
    if problem is not None:
        raise ReactionsError(field, f"{field} {problem}")
    return value


def removed(old: Reactions) -> list[str]:
    """The ids `old` keeps a bit for but no longer offers."""
    offered = {x.id for x in old.items}
    return [rid for rid, _ in old.bits if rid not in offered]


def needs_room(items: Any, old: Reactions | None) -> bool:
    """Whether `items` adds more ids than `old` has free bits (then `free` matters)."""
    if old is None or not isinstance(items, list):
        return False
    known = dict(old.bits)
    given = [x.get("id") for x in items if isinstance(x, dict)]
    new = {rid for rid in given if isinstance(rid, str) and rid not in known}
    return len(known) + len(new) > MAX_BITS


def define(
    items: Any, max_per_voter: Any, old: Reactions | None, free: frozenset[str] = frozenset()
) -> Reactions:
    """A checked definition from [{id, label}] and maxPerVoter; ids `old` knew keep their bit.
    `free`: ids `old` no longer offers that no voter holds, whose bits new ids may take."""
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_REACTIONS:
        raise ReactionsError("reactions", f"reactions must list 1..{MAX_REACTIONS} reactions")
    parsed: list[Reaction] = []
    for item in items:
        if not isinstance(item, dict):
            raise ReactionsError("reactions", "each reaction must be an object {id, label}")
        rid = _text(item.get("id"), "reactions.id", MAX_ID)
        label = _text(item.get("label", rid), "reactions.label", MAX_LABEL)
        if any(p.id == rid for p in parsed):
            raise ReactionsError("reactions.id", f"reaction id {rid!r} is listed twice")
        parsed.append(Reaction(rid, label))
    if isinstance(max_per_voter, bool) or not isinstance(max_per_voter, int):
        raise ReactionsError("maxPerVoter", "maxPerVoter must be an integer")
    if not 1 <= max_per_voter <= len(parsed):
        raise ReactionsError("maxPerVoter", f"maxPerVoter must be 1..{len(parsed)}")
    bits = dict(old.bits) if old is not None else {}
    listed = {r.id for r in parsed}
    gone = removed(old) if old is not None else []
    reusable = [rid for rid in gone if rid in free and rid not in listed]
    for r in parsed:
        if r.id in bits:
            continue
        taken = set(bits.values())
        spare = [b for b in range(MAX_BITS) if b not in taken]
        if spare:
            bits[r.id] = spare[0]
        elif reusable:
            bits[r.id] = bits.pop(reusable.pop(0))
        else:
            raise ReactionsError("reactions", full(old, free))
    return Reactions(tuple(parsed), max_per_voter, tuple(bits.items()))


def full(old: Reactions | None, free: frozenset[str]) -> str:
    held = [rid for rid in (removed(old) if old is not None else []) if rid not in free]
    return (
        f"a reactions group keeps at most {MAX_BITS} reaction ids, offered or removed: a "
        "removed id keeps its place while any voter holds it"
        + (f" (removed ids still held: {', '.join(held)})" if held else "")
    )


def bit_of(r: Reactions, rid: str) -> int | None:
    """The bit of a reaction id the group offers now (None for a removed or unknown id)."""
    if not any(x.id == rid for x in r.items):
        return None
    return dict(r.bits)[rid]


def held(r: Reactions, value: int) -> list[str]:
    """The ids a stored value holds, in the owner's order (removed ids left out)."""
    bits = dict(r.bits)
    return [x.id for x in r.items if value >> bits[x.id] & 1]


def counts(r: Reactions, bit_counts: tuple[int, ...]) -> dict[str, int]:
    """{id: voters holding it}, in the owner's order."""
    bits = dict(r.bits)
    return {x.id: bit_counts[bits[x.id]] if bits[x.id] < len(bit_counts) else 0 for x in r.items}


def public(r: Reactions) -> dict[str, Any]:
    """The definition as the API shows it."""
    return {
        "reactions": [{"id": x.id, "label": x.label} for x in r.items],
        "maxPerVoter": r.max_per_voter,
    }
