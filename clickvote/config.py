"""Settings from command-line flags and CLICKVOTE_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from clickvote.coalesce import DEFAULT_WINDOW
from clickvote.engineio import MAX_QUEUE, MAX_SESSIONS_PER_IP
from clickvote.sio import CONNECT_TIMEOUT

# settings renamed, by their earlier environment names (still read where the new one is unset)
FORMER_NAMES = {"max_event_bytes": "max_payload"}


def _default_data_dir() -> str:
    return "./var"


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: str = field(default_factory=_default_data_dir)
    database_url: str = ""  # empty: sqlite:///<data_dir>/clickvote.db
    redis_url: str = ""  # empty: in-process fan-out
    master_key: str = ""  # empty: <data_dir>/master.key (created 0600)
    session_ttl: int = 7 * 24 * 3600  # seconds
    login_token_ttl: int = 30 * 60  # seconds, socket login tokens
    voter_token_ttl: int = 365 * 24 * 3600  # seconds, anonymous voter tokens
    identities: str = ""  # new environments' voter identities; empty: identity.DEFAULT
    ip_voters: int = 20  # new environments' voters per (IP, user agent) and item (abuse.py)
    # token buckets: capacity (burst) and refill rate (tokens per second)
    rate_voter_burst: float = 20.0
    rate_voter_per_sec: float = 5.0
    rate_ip_burst: float = 200.0
    rate_ip_per_sec: float = 50.0
    max_event_bytes: int = 4096  # bytes of one Socket.IO event's JSON payload
    secure_cookies: bool = False
    bcrypt_rounds: int = 12
    log_level: str = "info"
    max_subscriptions: int = 1000  # items one socket may watch (get-votes)
    max_connections: int = 10_000  # open connections; kept below the open-files limit
    header_timeout: float = 10.0  # seconds for a connection to send a request's headers
    max_body: int = 65_536  # bytes, a JSON API request body (413 past it)
    # token buckets per IP (login and registration attempts) and per email (wrong passwords)
    rate_login_burst: float = 10.0
    rate_login_per_sec: float = 0.1
    # Socket.IO: seconds a session has to CONNECT; Engine.IO sessions open at once per client
    # address; packets waiting for one socket before it is closed as too slow to read them
    connect_timeout: float = CONNECT_TIMEOUT
    max_sessions_per_ip: int = MAX_SESSIONS_PER_IP
    max_socket_queue: int = MAX_QUEUE
    # seconds: an item's watchers get at most one totals update per window (0: one per vote)
    broadcast_window: float = DEFAULT_WINDOW
    # `clickvote serve` processes sharing one listening socket (0: one per usable core)
    workers: int = 0
    # seconds a request waits for the database (SQLite locked by another process, PostgreSQL
    # not answering) before it is answered `storage_unavailable` (the page sends it again):
    # below the embed's 10 s
    storage_wait: float = 5.0
    # webhooks (clickvote/webhooks.py): destinations on loopback/private/link-local addresses
    # refused unless allowed; seconds to connect and, apart, to get the answer's headers;
    # seconds between looks at the outbox; retry delay after the first failure, doubling up
    # to the cap (each with jitter); delivery attempts kept in the log per environment;
    # events kept waiting per environment (its own bound, where its webhook sets one)
    webhook_allow_private: bool = False
    webhook_timeout: float = 10.0
    webhook_poll: float = 1.0
    webhook_backoff: float = 5.0
    webhook_backoff_max: float = 3600.0
    webhook_log_size: int = 100
    webhook_max_pending: int = 100_000

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return "sqlite:///" + str(Path(self.data_dir) / "clickvote.db")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings: defaults < CLICKVOTE_* environment < explicit overrides (not None)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.name
            raw = env.get("CLICKVOTE_" + name.upper())
            if not raw and f.name in FORMER_NAMES:
                name = FORMER_NAMES[f.name]
                raw = env.get("CLICKVOTE_" + name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.type, raw, name)
        for key, value in overrides.items():
            if value is not None:
                values[key] = value
        return replace(cls(), **values)


def _convert(type_name: Any, raw: str, name: str) -> Any:
    t = str(type_name)
    try:
        if t == "int":
            return int(raw)
        if t == "float":
            return float(raw)
        if t == "bool":
            return _bool(raw)
    except ValueError as exc:
        raise ValueError(f"CLICKVOTE_{name.upper()}: invalid value {raw!r}") from exc
    return raw
