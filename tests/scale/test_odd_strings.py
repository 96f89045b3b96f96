"""Odd strings on PostgreSQL: the same refusals as on SQLite, never a 5xx or a traceback."""

from __future__ import annotations

from pathlib import Path

from oddstrings import EDGES, accepted, check_every_field
from services import PostgresServer

from .conftest import start_instance


def test_arbitrary_unicode_in_every_field_on_postgres(pg: PostgresServer, tmp_path: Path) -> None:
    inst = start_instance(tmp_path, pg.create_database(), "")
    try:
        check_every_field(inst.url, examples=10)
    finally:
        inst.stop()


def test_sqlite_and_postgres_accept_the_same_strings(pg: PostgresServer, tmp_path: Path) -> None:
    found: list[list[tuple[str, bool]]] = []
    for database_url in ("", pg.create_database()):
        inst = start_instance(tmp_path / str(len(found)), database_url, "")
        try:
            found.append(accepted(inst.url))
        finally:
            inst.stop()
    on_sqlite, on_postgres = found
    assert on_sqlite == on_postgres
    refused = {what for what, ok in on_sqlite if not ok}
    assert refused == {
        f"{field} {ch!r}"
        for field in ("voteTo+userId", "group name")
        for ch in EDGES[:1] + EDGES[-2:]
    }
