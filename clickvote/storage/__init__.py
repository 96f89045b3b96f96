"""Storage back ends. `open_storage(settings)` picks one from the database URL."""

from __future__ import annotations

from clickvote.config import Settings
from clickvote.storage.base import (
    Conflict,
    Env,
    Group,
    NotFound,
    Org,
    Storage,
    StorageUnavailable,
    User,
    VoteOutcome,
)

__all__ = [
    "Conflict",
    "Env",
    "Group",
    "NotFound",
    "Org",
    "Storage",
    "StorageUnavailable",
    "User",
    "VoteOutcome",
    "open_storage",
]


def open_storage(settings: Settings) -> Storage:
    url = settings.resolved_database_url
    if url.startswith("sqlite:"):
        from clickvote.storage.sqlite import SQLiteStorage

        return SQLiteStorage(url, busy_timeout=settings.storage_wait)
    if url.startswith(("postgresql:", "postgres:")):
        try:
            from clickvote.storage.postgres import PostgresStorage
        except ImportError as exc:  # pragma: no cover - psycopg missing
            raise ValueError(
                "PostgreSQL storage needs psycopg and the system's libpq "
                f"(Debian/Ubuntu: apt-get install libpq5): {exc}"
            ) from exc
        return PostgresStorage(url, answer_timeout=settings.storage_wait)
    raise ValueError(f"unsupported database URL: {url!r} (use sqlite:///path or postgresql://)")
