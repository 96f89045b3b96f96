"""An upgrade in place under `clickvote serve --workers 2`: a new version installed while the
server runs takes effect, on every worker, at the first worker restart (the supervisor runs
itself again on it), instead of a restarted worker on the new version beside its supervisor's
hub and the other worker on the old one."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from pathlib import Path

import requests
from app.conftest import Dashboard, setup

import clickvote

from .workerserver import TIMEOUT, SioWatcher, WorkersServer, on_each_worker

NEW = "0.1.0+upgraded.1"


def installed_copy(site: Path) -> Path:
    """The clickvote package copied into `site` (a directory put first on PYTHONPATH)."""
    package = Path(clickvote.__file__).parent
    shutil.copytree(package, site / "clickvote", ignore=shutil.ignore_patterns("__pycache__"))
    return site / "clickvote" / "__init__.py"


def versions_served(url: str, n: int = 8) -> set[str]:
    """The version in /openapi.json, over `n` connections (each may land on either worker)."""
    seen = set()
    for _ in range(n):
        with requests.Session() as s:
            seen.add(s.get(f"{url}/openapi.json", timeout=TIMEOUT).json()["info"]["version"])
    return seen


def wait_versions(url: str, want: set[str], timeout: float = 60) -> set[str]:
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        try:
            seen = versions_served(url)
        except requests.RequestException:  # the moment the server starts again
            seen = set()
        if seen == want:
            return seen
        time.sleep(0.2)
    return seen


def test_an_upgrade_in_place_restarts_the_whole_server_on_it(tmp_path: Path) -> None:
    init = installed_copy(tmp_path / "site")
    # the copy first on the path, not the working directory's package (python -m)
    site = {"PYTHONPATH": str(tmp_path / "site"), "PYTHONSAFEPATH": "1"}
    srv = WorkersServer(tmp_path / "data", 2, **site)
    try:
        srv.start()
        assert srv.proc is not None
        old = clickvote.__version__
        assert versions_served(srv.url) == {old}
        supervisor, before = srv.proc.pid, srv.workers()

        text = init.read_text()
        init.write_text(re.sub(r'__version__ = ".*"', f'__version__ = "{NEW}"', text))
        assert versions_served(srv.url) == {old}  # installing alone changes nothing
        os.kill(before[0], signal.SIGKILL)

        assert wait_versions(srv.url, {NEW}) == {NEW}
        assert srv.proc.poll() is None and srv.proc.pid == supervisor  # the same process
        after = srv.wait_workers(gone=tuple(before))
        assert len(after) == 2
        # the new workers share live updates through the new supervisor's hub
        pk = setup(Dashboard(srv.url))
        made: list[SioWatcher] = []
        try:

            def open_one() -> tuple[SioWatcher, str]:
                made.append(SioWatcher(srv.url, ["websocket"]))
                return made[-1], made[-1].sid

            first, second = on_each_worker(open_one)
            tokens = [str(w.call("login", {"apiKey": pk})["token"]) for w in (first, second)]
            get = {"id": "likes", "voteTo": "p", "userId": "bob", "token": tokens[1]}
            second.call("get-votes", get)
            msg = {"id": "likes", "voteTo": "p", "userId": "ann", "value": 1, "token": tokens[0]}
            assert first.call("vote", msg)["ok"]
            assert second.wait_count("get-votes-likes-p", 1)["total"]["count"] == 1
        finally:
            for w in made:
                w.close()
    finally:
        srv.stop()
