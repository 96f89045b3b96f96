"""Stopping the server (Ctrl+C / SIGTERM) while pages are connected: it stops within its grace
period, and a page waiting on a long-poll is told its session is over (Engine.IO close)."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import requests

from .conftest import Client, Dashboard, login, setup
from .procserver import ServerProcess

GRACE = 3  # clickvote.app.SERVER_OPTIONS["timeout_graceful_shutdown"]


def pending_long_poll(srv: ServerProcess) -> tuple[threading.Thread, list[str]]:
    """An Engine.IO session's GET left waiting (nothing to send for 25 s, the next ping), in a
    thread; its answer lands in the list."""
    opened = requests.get(f"{srv.url}/socket.io/?EIO=4&transport=polling", timeout=10)
    sid = json.loads(opened.text[1:])["sid"]
    answer: list[str] = []
    poll_url = f"{srv.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    poll = threading.Thread(target=lambda: answer.append(requests.get(poll_url, timeout=60).text))
    poll.start()
    time.sleep(0.5)  # the GET now waits
    return poll, answer


@pytest.mark.parametrize("workers", ["1", "2"])
def test_stop_with_a_pending_long_poll(tmp_path: Path, workers: str) -> None:
    """With workers, the long-poll waits in one of them: the stop reaches it through the
    supervisor."""
    srv = ServerProcess(tmp_path, env={"CLICKVOTE_WORKERS": workers})
    srv.start()
    try:
        poll, answer = pending_long_poll(srv)
        assert srv.proc is not None
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGINT)
        srv.proc.wait(GRACE + 20)
        stopped = time.monotonic() - t0
        poll.join(10)
        assert srv.proc.returncode == 0
        assert stopped < GRACE + 10, f"took {stopped:.1f} s to stop"
        assert answer == ["1"]  # an Engine.IO close packet, not a 500 or a dropped request
    finally:
        srv.stop()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_stops_gracefully_with_status_0(tmp_path: Path, workers: str) -> None:
    """`docker stop`'s signal: the server shuts down and exits by itself with status 0. It
    must not end by dying of the signal: as PID 1 under qemu-user that never happens and
    `docker stop` waits its whole timeout (clickvote/stopping.py)."""
    srv = ServerProcess(tmp_path, env={"CLICKVOTE_WORKERS": workers})
    srv.start()
    try:
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(GRACE + 20) == 0
    finally:
        srv.stop()


def test_a_stop_told_twice_is_one_graceful_stop_a_second_ctrl_c_forces_it() -> None:
    """A worker hears a terminal's Ctrl-C and its supervisor's SIGTERM: one stop, not the
    forced exit uvicorn makes of a second SIGINT (which skips the app's lifespan shutdown)."""
    import uvicorn

    from clickvote.graceful import Server

    for first, second in ((signal.SIGTERM, signal.SIGINT), (signal.SIGINT, signal.SIGTERM)):
        server = Server(uvicorn.Config(app=None))
        server.handle_exit(first, None)
        server.handle_exit(second, None)
        assert server.should_exit and not server.force_exit
    server.handle_exit(signal.SIGINT, None)  # Ctrl-C again: the user insists
    assert server.force_exit


def test_sigterm_then_sigint_shuts_down_without_a_traceback(tmp_path: Path) -> None:
    """SIGINT while a SIGTERM's shutdown waits for a long-poll: the poll is still answered
    and the app's shutdown runs (a forced exit skips it, leaving a traceback)."""
    log = tmp_path / "stderr.log"
    srv = ServerProcess(tmp_path, log=log)
    srv.start()
    try:
        poll, answer = pending_long_poll(srv)  # the shutdown below waits for it
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        srv.proc.send_signal(signal.SIGINT)
        assert srv.proc.wait(GRACE + 20) == 0
        poll.join(10)
        assert answer == ["1"]
    finally:
        srv.stop()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text


def test_a_stop_while_a_vote_waits_for_a_locked_database(tmp_path: Path) -> None:
    """Another process keeps the SQLite database locked while a vote waits for it, and the
    server is told to stop: the vote's wait ends with the stop's grace (not its own 5 s), so
    the stop ends with status 0 and a log without a traceback, and nothing of the vote is
    stored (its page sends it again, with its msgId, to the next server)."""
    log = tmp_path / "server.log"
    srv = ServerProcess(tmp_path / "data", env={"CLICKVOTE_STORAGE_WAIT": "20"}, log=log)
    srv.start()
    c = Client(srv.url)
    lock = sqlite3.connect(tmp_path / "data" / "clickvote.db", isolation_level=None, timeout=10)
    try:
        pk = setup(Dashboard(srv.url))
        token = login(c, pk)
        lock.execute("BEGIN IMMEDIATE")
        vote = {"id": "likes", "voteTo": "p", "userId": "u", "value": 1, "msgId": "m"}
        c.emit("vote", {**vote, "token": token})
        time.sleep(0.5)  # the vote now waits for the lock
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(GRACE + 20) == 0
    finally:
        lock.close()
        c.close()
        srv.stop()
    text = log.read_text()
    # uvicorn cancels what still runs after GRACE: the vote would end in a traceback
    assert "Traceback" not in text and "graceful shutdown exceeded" not in text, text
    votes = sqlite3.connect(tmp_path / "data" / "clickvote.db")
    try:
        assert votes.execute("SELECT COUNT(*) FROM votes").fetchone() == (0,)
    finally:
        votes.close()
