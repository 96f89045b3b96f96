"""An item's tally recomputed from its per-voter rows: the truth the stored tallies are
checked against (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from typing import Any

from clickvote.storage.base import Tally

TRUTH = (
    "SELECT COUNT(*), COALESCE(SUM(value), 0) FROM votes "
    "WHERE group_id = ? AND vote_to = ? AND value <> 0"
)


async def recompute_tally(store: Any, group_id: str, vote_to: str) -> Tally:
    """The voters holding a non-zero value on the item and the sum of their values."""
    row = await store._run(lambda tx: tx.one(TRUTH, group_id, vote_to), write=False)
    return Tally(int(row[0]), int(row[1]))
