"""One real ClickVote server per test session, in-process, on 127.0.0.1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from services import CLIENT_TIMEOUT, Client, free_port, load_settings, start_uvicorn

from clickvote.app import create_app
from clickvote.context import Context

TIMEOUT = CLIENT_TIMEOUT


@dataclass
class Server:
    url: str
    ctx: Context
    data_dir: Path


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("clickvote-data")
    port = free_port()
    app = create_app(load_settings(port, data_dir))
    srv, thread = start_uvicorn(app, port)
    yield Server(f"http://127.0.0.1:{port}", app.api.state.ctx, data_dir)
    srv.should_exit = True
    thread.join(timeout=10)


class Dashboard:
    """A logged-in dashboard user: requests.Session that sends the CSRF header."""

    def __init__(self, url: str, email: str | None = None, password: str = "password123"):
        self.url = url
        self.http = requests.Session()
        self.email = email or f"u{uuid.uuid4().hex[:12]}@example.com"
        self.password = password
        r = self.http.post(
            f"{url}/auth/register",
            json={"email": self.email, "password": password},
            timeout=TIMEOUT,
        )
        assert r.status_code == 200, r.text
        self.http.headers["X-CSRF-Token"] = self.http.cookies["csrftoken"]

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(self.url + path, timeout=TIMEOUT, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.http.post(self.url + path, json=json, timeout=TIMEOUT, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.http.put(self.url + path, json=json, timeout=TIMEOUT, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.http.delete(self.url + path, timeout=TIMEOUT, **kw)

    def keys(self) -> dict[str, Any]:
        r = self.get("/settings/")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def group(self, name: str, type: str = "single", **extra: Any) -> dict[str, Any]:
        r = self.post("/votes/", {"name": name, "type": type, **extra})
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture
def dash(server: Server) -> Dashboard:
    return Dashboard(server.url)


@pytest.fixture
def clients(server: Server) -> Iterator[Any]:
    made: list[Client] = []

    def make(auth: Any = None) -> Client:
        c = Client(server.url, auth)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def setup(dash: Dashboard, name: str = "likes", type: str = "single", **kw: Any) -> str:
    """A vote group `name` in the dashboard user's environment; returns its public key."""
    dash.group(name, type, **kw)
    return str(dash.keys()["publicKey"])


def login(client: Client, public_key: str) -> str:
    ack = client.call("login", {"apiKey": public_key})
    assert ack["ok"], ack
    return str(ack["token"])
