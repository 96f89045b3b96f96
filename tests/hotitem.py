"""A vote storm on one item: many voters (one socket each, one vote each, all at once) and
some sockets that only watch it, on one or several servers. Bounded in count and time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from clickvote.client import SioClient

CONNECT_AT_ONCE = 50
GROUP, ITEM = "hot", "post"
EVENT = f"get-votes-{GROUP}-{ITEM}"


@dataclass
class Storm:
    acks: list[int]  # each voter's acknowledged count
    frames: list[list[int]]  # per watcher: the counts of the item updates it got, in order
    elapsed: float  # seconds from the first vote sent to the last acknowledgement


async def storm(
    pk: str,
    voter_urls: list[str],
    watcher_urls: list[str],
    n_voters: int,
    truth: int,
    timeout: float,
) -> Storm:
    """Votes 1 from `n_voters` distinct users; returns once every watcher has seen `truth`
    (or after `timeout` seconds more, when a watcher never does)."""
    frames: list[list[int]] = [[] for _ in watcher_urls]

    def recorder(i: int) -> Any:
        def on_event(name: str, data: Any, _now: float) -> None:
            if name == EVENT and isinstance(data, dict) and "total" in data:
                frames[i].append(int(data["total"]["count"]))

        return on_event

    watchers = [SioClient(url, recorder(i)) for i, url in enumerate(watcher_urls)]
    voters = [SioClient(voter_urls[i % len(voter_urls)]) for i in range(n_voters)]
    sem = asyncio.Semaphore(CONNECT_AT_ONCE)

    async def connect(c: SioClient) -> None:
        async with sem:
            await c.connect(auth={"token": pk}, timeout=timeout)

    try:
        await asyncio.gather(*(connect(c) for c in watchers + voters))
        for w in watchers:
            ack = await w.call("get-votes", {"id": GROUP, "voteTo": ITEM, "key": pk}, timeout)
            assert ack["ok"], ack
        for f in frames:
            f.clear()  # the answers to get-votes: not updates
        start = time.monotonic()
        acks = await asyncio.wait_for(
            asyncio.gather(
                *(
                    c.call(
                        "vote",
                        {"id": GROUP, "voteTo": ITEM, "key": pk, "userId": f"v{i}", "value": 1},
                        timeout,
                    )
                    for i, c in enumerate(voters)
                )
            ),
            timeout,
        )
        elapsed = time.monotonic() - start
        assert all(a["ok"] for a in acks), [a for a in acks if not a["ok"]][:3]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(not f or f[-1] != truth for f in frames):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a late (wrong) frame after the newest would show up here
        return Storm([int(a["total"]["count"]) for a in acks], frames, elapsed)
    finally:
        for c in watchers + voters:
            await c.close()


def check_coalesced(result: Storm, n_voters: int, window: float) -> None:
    """Every watcher ends on the truth, only ever moving forward, with at most one update per
    window; every voter's acknowledgement is exact and its own."""
    assert sorted(result.acks) == list(range(1, n_voters + 1))
    for f in result.frames:
        assert f and f[-1] == n_voters, f
        assert f == sorted(set(f)), f"totals went back or repeated: {f}"
        # at most one per window while votes came, plus the last one after them
        assert len(f) <= result.elapsed / window + 2, (len(f), result.elapsed)
        assert len(f) <= n_voters // 4, f"{len(f)} frames for {n_voters} votes"
