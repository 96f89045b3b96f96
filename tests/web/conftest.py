"""Fixtures for the browser tests: a real ClickVote server, a foreign-origin page server, Chromium.

Everything listens on 127.0.0.1 only and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from services import stop_process

from clickvote.client import free_port

CHROMIUM = os.environ.get("CLICKVOTE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("CLICKVOTE_SCREENSHOTS", "/tmp/clickvote-screenshots"))
UI_TIMEOUT_MS = 15_000


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} not up after {timeout}s: {last}")


@dataclass
class Server:
    base: str
    data_dir: Path
    log: Path

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(scope="session")
def cv_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`clickvote serve` on a free 127.0.0.1 port with a fresh data dir (session-wide); one
    process, or `--workers N` where a test asks for N with
    `@pytest.mark.parametrize("cv_server", [N], indirect=True)`, or (N, {VAR: value}) for
    more settings."""
    param = getattr(request, "param", 1)
    workers, more = param if isinstance(param, tuple) else (param, {})
    with running_server(tmp_path_factory.mktemp("cv-data"), workers, more) as server:
        yield server


@contextlib.contextmanager
def running_server(
    data: Path, workers: int = 1, more: dict[str, str] | None = None
) -> Iterator[Server]:
    """`clickvote serve` on a free 127.0.0.1 port with data in `data` and `more` settings,
    until the block ends."""
    port = free_port()
    log = data / "server.log"
    env = {
        **os.environ,
        "CLICKVOTE_BCRYPT_ROUNDS": "4",
        "CLICKVOTE_DATA_DIR": str(data),
        "CLICKVOTE_DATABASE_URL": "",
        "CLICKVOTE_REDIS_URL": "",
        "CLICKVOTE_LOG_LEVEL": "warning",
        "CLICKVOTE_WORKERS": str(workers),
        # browser tests click a lot from one address: keep the limits out of the way
        "CLICKVOTE_RATE_IP_BURST": "10000",
        "CLICKVOTE_RATE_IP_PER_SEC": "1000",
        # ... and every test registers its own account from 127.0.0.1
        "CLICKVOTE_RATE_LOGIN_BURST": "10000",
        "CLICKVOTE_RATE_LOGIN_PER_SEC": "1000",
        # webhooks to the tests' receivers on 127.0.0.1, sent at once
        "CLICKVOTE_WEBHOOK_ALLOW_PRIVATE": "1",
        "CLICKVOTE_WEBHOOK_POLL": "0.1",
        **(more or {}),
    }
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clickvote",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(data),
            ],
            cwd=REPO,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        yield Server(f"http://127.0.0.1:{port}", data, log)
    finally:
        stop_process(proc)


@dataclass
class Account:
    """A registered dashboard user, driven through the JSON API."""

    server: Server
    email: str
    password: str
    http: requests.Session = field(default_factory=requests.Session)
    me: dict[str, Any] = field(default_factory=dict)

    def call(self, method: str, path: str, json: Any = None) -> Any:
        headers = {}
        if method != "GET":
            headers["X-CSRF-Token"] = self.http.cookies.get("csrftoken", "")
        r = self.http.request(method, self.server.url(path), json=json, headers=headers, timeout=10)
        assert r.status_code < 400, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    @property
    def public_key(self) -> str:
        return str(self.me["currentEnv"]["public_key"])

    def group(self, type_: str = "single", start: int | None = None, end: int | None = None) -> str:
        name = f"g-{type_}-{uuid.uuid4().hex[:8]}"
        body: dict[str, Any] = {"name": name, "type": type_}
        if type_ == "range":
            body.update(start=start or 1, end=end or 5)
        self.call("POST", "/votes/", body)
        return name


@pytest.fixture()
def account(cv_server: Server) -> Account:
    return register(cv_server)


def register(server: Server) -> Account:
    """A new dashboard user of `server`, logged in."""
    acc = Account(server, f"u{uuid.uuid4().hex[:10]}@example.com", "correct horse battery")
    r = acc.http.post(
        server.url("/auth/register"),
        json={"email": acc.email, "password": acc.password},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    acc.me = acc.call("GET", "/users/self")
    return acc


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Site:
    """A plain static web site on its own port: a different origin from the server."""

    base: str
    root: Path

    def page(self, name: str, html: str) -> str:
        (self.root / name).write_text(html, encoding="utf-8")
        return f"{self.base}/{name}"


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("site")
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{httpd.server_address[1]}", root)
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (inv setup does)")
    from playwright import sync_api

    # Playwright gives every launch a fresh temporary profile (user data dir) of its own.
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def new_page(browser: Any) -> Iterator[Any]:
    """Factory: each call opens a page in a fresh context (own cookies and localStorage)."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(viewport: tuple[int, int] = (1280, 800)) -> Any:
        ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        ctx.set_default_timeout(UI_TIMEOUT_MS)
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    make.errors = errors  # type: ignore[attr-defined]
    yield make
    for ctx in contexts:
        with contextlib.suppress(Exception):
            ctx.close()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
