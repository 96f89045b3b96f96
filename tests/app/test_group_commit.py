"""SQLite group commit: writes of one event-loop turn share a COMMIT, yet each stays its own."""

from __future__ import annotations

import asyncio
from pathlib import Path

from clickvote.storage.base import Conflict
from clickvote.storage.sqlite import SQLiteStorage


def test_writes_of_one_turn_share_a_commit_and_fail_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"

    async def main() -> None:
        s = SQLiteStorage(url)
        await s.open()
        await s.migrate()
        commits = 0
        attempt = s._attempt

        def counting(fn, write):  # type: ignore[no-untyped-def]
            nonlocal commits
            commits += write
            return attempt(fn, write)

        s._attempt = counting  # type: ignore[method-assign]
        made = await asyncio.gather(*(s.create_user(f"u{i}@example.com", "h") for i in range(20)))
        assert commits == 1 and len({u.id for u in made}) == 20
        # one of them fails (duplicate e-mail): only its caller sees the error
        commits = 0
        results = await asyncio.gather(
            s.create_user("a@example.com", "h"),
            s.create_user("u3@example.com", "h"),
            s.create_user("b@example.com", "h"),
            return_exceptions=True,
        )
        assert isinstance(results[1], Conflict), results
        assert [u.email for u in (results[0], results[2])] == ["a@example.com", "b@example.com"]  # type: ignore[union-attr]
        # a read sees the writes requested before it, even when their COMMIT is still pending
        task = asyncio.ensure_future(s.create_user("c@example.com", "h"))
        await asyncio.sleep(0)  # the write is queued, its commit not yet run
        assert await s.get_user_by_email("c@example.com") is not None
        await task
        # a caller that gave up before the commit: its write is not applied
        gone = asyncio.ensure_future(s.create_user("d@example.com", "h"))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0.01)
        assert await s.get_user_by_email("d@example.com") is None
        await s.close()
        # all of it is on disk
        again = SQLiteStorage(url)
        await again.open()
        for email in ("u0@example.com", "u19@example.com", "a@example.com", "c@example.com"):
            assert await again.get_user_by_email(email) is not None, email
        await again.close()

    asyncio.run(main())
