"""The abuse layers' storage on SQLite and PostgreSQL: an environment's settings, the votes
each layer refused per day (added in batches), and both through export and import."""

from __future__ import annotations

from typing import Any

import pytest

from clickvote.abuse import DAY_MS
from clickvote.storage.base import AbuseSettings
from clickvote.storage.sql import SQLStorage

from .conftest import run
from .test_storage_contract import fresh, kind, pg_or_none, seed  # noqa: F401

DAY = 20_425 * DAY_MS


@pytest.fixture
def db(fresh: Any) -> SQLStorage:  # noqa: F811
    return fresh()  # type: ignore[no-any-return]


def test_an_environment_keeps_its_layer_settings(db: SQLStorage) -> None:
    async def go() -> None:
        _, env_id = await seed(db)
        env = await db.get_env(env_id)
        assert env is not None and env.abuse == AbuseSettings()  # the defaults
        chosen = AbuseSettings(600, 0, 12, rate_burst=3, rate_per_sec=0.25)
        assert (await db.set_env_abuse(env_id, chosen)).abuse == chosen
        again = await db.get_env(env_id)
        assert again is not None and again.abuse == chosen and again.identities == env.identities
        by_key = await db.get_env_by_public_key(env.public_key)
        assert by_key is not None and by_key.abuse == chosen

    run(go())


def test_refusal_counts_add_up_per_day_and_layer(db: SQLStorage) -> None:
    async def go() -> None:
        _, env_id = await seed(db)
        _, other = await seed(db)
        await db.add_refusals([(env_id, DAY, "token", 2), (env_id, DAY, "ipWindow", 1)])
        await db.add_refusals(
            [
                (env_id, DAY, "token", 3),
                (env_id, DAY + DAY_MS, "proofOfWork", 4),
                (env_id, DAY - DAY_MS, "rateLimit", 9),
                (other, DAY, "token", 7),
                ("gone", DAY, "token", 1),  # an environment no longer there: skipped
            ]
        )
        await db.add_refusals([])
        assert await db.refusals(env_id, DAY) == [
            (DAY, "ipWindow", 1),
            (DAY, "token", 5),
            (DAY + DAY_MS, "proofOfWork", 4),
        ]
        assert await db.refusals(other, 0) == [(DAY, "token", 7)]

    run(go())


def test_export_and_import_carry_settings_and_counts(fresh: Any) -> None:  # noqa: F811
    source, target = fresh("source"), fresh("target")

    async def go() -> None:
        _, env_id = await seed(source)
        await source.set_env_abuse(env_id, AbuseSettings(pow_difficulty=10))
        await source.add_refusals([(env_id, DAY, "ipWindow", 6)])
        await target.import_data(await source.export_data(include_sessions=False))
        env = await target.get_env(env_id)
        assert env is not None and env.abuse.pow_difficulty == 10
        assert await target.refusals(env_id, 0) == [(DAY, "ipWindow", 6)]

    run(go())
