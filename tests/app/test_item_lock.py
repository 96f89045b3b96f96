"""The per-item lock of the vote path: one holder per item, FIFO, nothing left behind."""

from __future__ import annotations

import asyncio

from clickvote.realtime import _ItemLock


def test_item_lock_serialises_per_key_and_cleans_up() -> None:
    async def main() -> None:
        locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        order: list[str] = []

        async def hold(key: str, name: str) -> None:
            async with _ItemLock(locks, key):
                order.append(f"+{name}")
                await asyncio.sleep(0.01)
                order.append(f"-{name}")

        await asyncio.gather(hold("a", "1"), hold("a", "2"), hold("b", "3"), hold("a", "4"))
        assert [x for x in order if x[1] != "3"] == ["+1", "-1", "+2", "-2", "+4", "-4"]
        assert order.index("+3") < order.index("-1")  # another item is not held up
        assert locks == {}
        # a waiter cancelled before it got the lock leaves nothing behind either
        first = asyncio.ensure_future(hold("c", "x"))
        await asyncio.sleep(0)
        waiter = asyncio.ensure_future(hold("c", "y"))
        await asyncio.sleep(0)
        waiter.cancel()
        await first
        await asyncio.gather(waiter, return_exceptions=True)
        assert locks == {} and "+y" not in order

    asyncio.run(main())
