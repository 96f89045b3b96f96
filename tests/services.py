"""Servers for tests, on 127.0.0.1: ClickVote (in-process or its settings for a process),
and real PostgreSQL and Redis with throwaway data, stopped after.

Missing binaries fail with a clear message (run `inv setup`); these tests are never skipped.
"""

from __future__ import annotations

import contextlib
import glob
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from clickvote import client
from clickvote.client import LIMITS_OFF, free_port, limits_off_env

if TYPE_CHECKING:
    from clickvote.config import Settings

CLIENT_TIMEOUT = 10.0  # generous: the suite also runs under QEMU emulation
SETUP_HINT = "run `inv setup` (installs postgresql and redis-server on this host)"


# Tests of the limits themselves set their own. Webhooks may call the tests' receivers on
# 127.0.0.1, and retry within a fraction of a second.
LOAD_SETTINGS: dict[str, Any] = {
    **LIMITS_OFF,
    "webhook_allow_private": True,
    "webhook_poll": 0.05,
    "webhook_backoff": 0.05,
    "webhook_backoff_max": 0.4,
    "webhook_timeout": 1.0,
}


def stop_process(proc: subprocess.Popen[Any], grace: float = 10) -> None:
    """SIGTERM, `grace` seconds to exit, then SIGKILL; a process already gone is left be."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)


def load_settings(port: int, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for an in-process server on 127.0.0.1:``port``."""
    from clickvote.config import Settings

    values = {**LOAD_SETTINGS, **overrides}
    return Settings.from_env({}, host="127.0.0.1", port=port, data_dir=str(data_dir), **values)


def load_env() -> dict[str, str]:
    """LOAD_SETTINGS as the environment of a `clickvote serve` process."""
    return limits_off_env()


def wait_healthy(
    url: str, timeout: float, alive: Callable[[], bool] = lambda: True, what: str = "server"
) -> None:
    """Poll ``url``/healthz until it answers 200; fail early once ``alive()`` is false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if not alive():
            raise RuntimeError(f"{what} exited before answering {url}/healthz")
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url}/healthz within {timeout:.0f}s")


def _wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: p.split("/")[4])
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(f"PostgreSQL binaries (initdb, pg_ctl) not found: {SETUP_HINT}")


class PostgresServer:
    """initdb + pg_ctl in a temp dir; runs as the `postgres` user when we are root."""

    def __init__(self) -> None:
        self.bindir = pg_bindir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="clickvote-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.as_root = os.geteuid() == 0
        self.user = "clickvote"

    def _cmd(self, *args: str) -> list[str]:
        if self.as_root:
            if not shutil.which("runuser"):
                raise RuntimeError("runuser is needed to run PostgreSQL as root")
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def start(self) -> PostgresServer:
        """Create the cluster (the first time) and start it; after `halt()`, start it again
        on the same port and data."""
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        subprocess.run(
            self._cmd(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )
        return self

    def _initdb(self) -> None:
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            self._cmd(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A fresh empty database; returns its URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        import psycopg  # needs libpq: only the host tests get here

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def halt(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data and port for `start()` (`fast`: as a restart
        does, every session ended; `immediate`: as a crash)."""
        subprocess.run(
            self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"),
            capture_output=True,
            timeout=60,
        )

    def stop(self) -> None:
        self.halt("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def pids(self) -> list[int]:
        """The running server's processes: the postmaster first, then its descendants."""
        first = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
        found = [int(first)]
        for pid in found:  # grows as it goes: children's children too
            for children in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):  # the task ended meanwhile
                    found += [int(c) for c in children.read_text().split()]
        return found


class RedisServer:
    """redis-server as a subprocess; stop()/start() keep the same port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError(f"redis-server not found: {SETUP_HINT}")
        self.binary = binary
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, 15, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        self.proc = None


def start_uvicorn(app: Any, port: int) -> tuple[Any, threading.Thread]:
    """Serve ``app`` on 127.0.0.1:``port`` in a daemon thread; return once it listens."""
    import uvicorn

    from clickvote.app import SERVER_OPTIONS

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        **SERVER_OPTIONS,
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    return srv, thread


class Client(client.Client):
    """clickvote.client's blocking Socket.IO client, with the suite's timeout and helpers to
    wait for events. `headers` go with its handshake (e.g. X-Forwarded-For)."""

    def __init__(self, url: str, auth: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(url, auth, headers, timeout=CLIENT_TIMEOUT)

    def login(self, public_key: str) -> str:
        ack = self.call("login", {"apiKey": public_key})
        assert ack["ok"], ack
        return str(ack["token"])

    def wait(self, event: str, timeout: float = CLIENT_TIMEOUT) -> Any:
        """The next occurrence of `event` (other events are dropped)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                name, data = self.events.get(timeout=left)
            except queue.Empty:
                break
            if name == event:
                return data
        raise AssertionError(f"no {event!r} event within {timeout}s")

    def nothing(self, event: str, within: float = 0.3) -> None:
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            try:
                name, data = self.events.get(timeout=left)
            except queue.Empty:
                return
            assert name != event, f"unexpected {event}: {data}"

    def drain(self) -> None:
        while not self.events.empty():
            self.events.get_nowait()
