"""Stopping the server (Ctrl+C / SIGTERM) while pages are connected: it stops within its grace
period, and a page waiting on a long-poll is told its session is over (Engine.IO close)."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from .procserver import ServerProcess

GRACE = 3  # clickvote.app.SERVER_OPTIONS["timeout_graceful_shutdown"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_stop_with_a_pending_long_poll(tmp_path: Path, workers: str) -> None:
    """With workers, the long-poll waits in one of them: the stop reaches it through the
    supervisor."""
    srv = ServerProcess(tmp_path, env={"CLICKVOTE_WORKERS": workers})
    srv.start()
    try:
        opened = requests.get(f"{srv.url}/socket.io/?EIO=4&transport=polling", timeout=10)
        sid = json.loads(opened.text[1:])["sid"]
        answer: list[str] = []
        poll_url = f"{srv.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
        poll = threading.Thread(
            target=lambda: answer.append(requests.get(poll_url, timeout=60).text)
        )
        poll.start()
        time.sleep(0.5)  # the GET now waits: nothing to send for 25 s (the next ping)
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
