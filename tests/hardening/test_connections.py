"""A real `clickvote serve` process against idle connections and oversized bodies: it keeps
answering, logs one line, and its memory stays bounded. Figures are printed (pytest -s)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from .conftest import Client
from .procserver import ServerProcess

IDLE = 150  # connections that never send a byte: more than the open-files limit below
CAP = 30
BODIES, BODY = 20, 1 << 20  # concurrent request bodies of 1 MiB each


def healthz_within(url: str, seconds: float) -> float | None:
    """Seconds until /healthz answered 200, or None if it never did within `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return None


def closed_by_server(s: socket.socket, deadline: float) -> bool:
    """Whether the server closed `s` before `deadline` (time.monotonic())."""
    s.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        while s.recv(4096):  # a 503 answer, then the close
            pass
    except TimeoutError:
        return False
    except OSError:
        pass
    return True


def drip_headers(port: int, seconds: float) -> float | None:
    """Send a request's headers a line at a time; seconds until the server closed, or None."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        while time.monotonic() - started < seconds:
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                return time.monotonic() - started
            s.settimeout(0.2)
            try:
                if s.recv(1) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                pass
            except OSError:
                return time.monotonic() - started
    return None


def long_poll_held(url: str, seconds: float) -> bool:
    """Whether an Engine.IO long-poll with nothing to receive is still held after `seconds`
    (longer than the header timeout: a request in progress is not timed by it)."""
    base = url + "/socket.io/?EIO=4&transport=polling"
    opened = requests.get(base, timeout=10).text
    sid = opened[opened.index("{") :]
    poll = base + "&sid=" + json.loads(sid)["sid"]
    try:
        requests.get(poll, timeout=seconds)
    except requests.ReadTimeout:
        return True
    except requests.RequestException:
        return False
    return False


def test_idle_connections_time_out_under_a_cap(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    env = {"CLICKVOTE_MAX_CONNECTIONS": str(CAP), "CLICKVOTE_HEADER_TIMEOUT": "1"}
    srv = ServerProcess(tmp_path, env=env, nofile=(128, 256), log=log)
    srv.start()
    idle: list[socket.socket] = []
    try:
        fd_limit = srv.fd_limit()
        for _ in range(IDLE):
            idle.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
        answered = healthz_within(srv.url, 15)
        deadline = time.monotonic() + 10
        closed = sum(closed_by_server(s, deadline) for s in idle)
        dripped = drip_headers(srv.port, 5)
        # a WebSocket outlives the header timeout (Engine.IO's pings time it instead)
        page = Client(srv.url)
        try:
            time.sleep(1.5)
            late = page.call("login", {"apiKey": "pb_none"})
        finally:
            page.close()
        held = long_poll_held(srv.url, 2.5)
    finally:
        for s in idle:
            s.close()
        srv.stop()
    text = log.read_text(errors="replace")
    print(
        f"\nidle connections: {IDLE} opened at an open-files limit of 128 (raised to 256), "
        f"cap {CAP}: {closed} closed by the server, /healthz answered after {answered} s; "
        f"headers sent a line at a time: closed after {dripped} s"
    )
    assert answered is not None, text[-2000:]
    assert closed == IDLE
    assert dripped is not None and dripped < 4, dripped  # closed at the 1 s header timeout
    assert late["error"]["code"] == "unknown_key", late
    assert held, "a long-poll was cut at the header timeout"
    assert fd_limit == 256  # the soft limit raised to the hard one
    assert text.count("connection cap reached") == 1, text[-2000:]
    assert "Traceback" not in text, text[-2000:]


def send_body(port: int, size: int, answers: list[bytes]) -> None:
    head = (
        f"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head.encode())
        chunk = b" " * 65536
        try:
            for _ in range(size // len(chunk)):
                s.sendall(chunk)
            answers.append(s.recv(64))
        except OSError as exc:
            answers.append(repr(exc).encode())


@pytest.mark.host  # resident memory under QEMU is the emulator's, not the server's
def test_oversized_bodies_keep_memory_bounded(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path)
    srv.start()
    try:
        assert healthz_within(srv.url, 10) is not None
        rss_before, _ = srv.memory()
        answers: list[bytes] = []
        threads = [
            threading.Thread(target=send_body, args=(srv.port, BODY, answers))
            for _ in range(BODIES)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        _, peak = srv.memory()
        alive = healthz_within(srv.url, 10)
    finally:
        srv.stop()
    grew = (peak - rss_before) / 1024
    print(
        f"\nbodies: {BODIES} x {BODY >> 20} MiB at once: peak resident memory "
        f"+{grew:.1f} MiB over {rss_before / 1024:.1f} MiB; answers {set(answers)}"
    )
    assert all(a.startswith(b"HTTP/1.1 413") for a in answers), answers
    assert grew < 16, grew
    assert alive is not None
