"""Scale-out fixtures: real PostgreSQL and Redis, and ClickVote instances sharing them."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from services import (
    CLIENT_TIMEOUT,
    Client,
    PostgresServer,
    RedisServer,
    free_port,
    load_settings,
    start_uvicorn,
)

from clickvote.app import create_app
from clickvote.context import Context

TIMEOUT = CLIENT_TIMEOUT


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.host)


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@dataclass
class Instance:
    url: str
    ctx: Context
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def fanout_ready(self) -> bool:
        return bool(getattr(self.ctx.fanout, "_healthy", False))

    def fanout_down(self) -> bool:
        return not self.fanout_ready()


def start_instance(data_dir: Path, database_url: str, redis_url: str, **settings: Any) -> Instance:
    port = free_port()
    app = create_app(
        load_settings(port, data_dir, database_url=database_url, redis_url=redis_url, **settings)
    )
    srv, thread = start_uvicorn(app, port)
    return Instance(f"http://127.0.0.1:{port}", app.api.state.ctx, srv, thread)


def wait_until(cond: Callable[[], bool], timeout: float = TIMEOUT, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        time.sleep(0.05)


@pytest.fixture
def cluster(
    pg: PostgresServer, redis_server: RedisServer, tmp_path: Path
) -> Iterator[list[Instance]]:
    """Two ClickVote instances on different ports sharing one PostgreSQL database and Redis
    (and the master key, via a shared data directory)."""
    db = pg.create_database()
    instances = [start_instance(tmp_path, db, redis_server.url) for _ in range(2)]
    try:
        for inst in instances:
            wait_until(inst.fanout_ready, what="Redis fan-out subscribed")
        yield instances
    finally:
        for inst in instances:
            inst.stop()


class Dashboard:
    def __init__(self, url: str, password: str = "password123") -> None:
        self.url = url
        self.http = requests.Session()
        self.email = f"u{uuid.uuid4().hex[:12]}@example.com"
        r = self.http.post(
            f"{url}/auth/register",
            json={"email": self.email, "password": password},
            timeout=TIMEOUT,
        )
        assert r.status_code == 200, r.text
        self.http.headers["X-CSRF-Token"] = str(self.http.cookies["csrftoken"])

    def keys(self) -> dict[str, Any]:
        r = self.http.get(f"{self.url}/settings/", timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def group(self, name: str, type: str = "single", **extra: Any) -> dict[str, Any]:
        r = self.http.post(
            f"{self.url}/votes/", json={"name": name, "type": type, **extra}, timeout=TIMEOUT
        )
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture
def clients() -> Iterator[Callable[[str], Client]]:
    made: list[Client] = []

    def make(url: str) -> Client:
        c = Client(url)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
