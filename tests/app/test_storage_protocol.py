"""The Storage protocol is the whole storage interface: every back end implements each of its
methods, and no back end has a public async method the protocol leaves out (the app and the
CLI type their storage as `Storage`, so anything missing there is reached only untyped)."""

from __future__ import annotations

import inspect

import pytest

from clickvote.storage.base import Storage
from clickvote.storage.postgres import PostgresStorage
from clickvote.storage.sqlite import SQLiteStorage


def public_async(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    }


@pytest.mark.parametrize("backend", [SQLiteStorage, PostgresStorage])
def test_protocol_matches_backends(backend: type) -> None:
    protocol = {name for name in vars(Storage) if not name.startswith("_")}
    assert protocol == public_async(backend)
    assert "count_rows" in protocol  # the import check of the CLI uses it


def test_dead_methods_are_gone() -> None:
    for name in ("get_user", "recompute_tally"):
        assert not hasattr(SQLiteStorage, name) and not hasattr(Storage, name)
