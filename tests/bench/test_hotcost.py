"""The hot item's cost figures (benchmarks/hotcost.py): frames counted in the votes' bins, the
collector's counts through SIGUSR1, context switches. Marked host: the benchmarks are not in
the images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.host

ROOT = Path(__file__).resolve().parents[2]


def test_frames_between_counts_the_bins_of_the_votes_only() -> None:
    from benchmarks.hotbench import BIN
    from benchmarks.hotcost import frames_between

    start = 1000 * BIN
    got = [{"bins": {"999": 5, "1000": 2, "1010": 3}}, {"bins": {"1010": 4, "1011": 7}}]
    assert frames_between(got, start, 10 * BIN) == 2 + 3 + 4


def test_serve_counts_collections_and_writes_them_at_sigusr1(tmp_path: Path) -> None:
    from benchmarks.hotcost import gc_stats

    out = tmp_path / "gc.json"
    # the launcher's counting around a stand-in for the server: a loop that collects
    ready = tmp_path / "ready"
    code = (
        "import gc, pathlib, sys, time, runpy\n"
        "from benchmarks import hotcost\n"
        "def run(*a, **k):\n"
        "    for _ in range(3):\n"
        "        gc.collect(2)\n"
        f"    pathlib.Path({str(ready)!r}).touch()\n"
        "    time.sleep(30)\n"
        "runpy.run_module = run\n"
        "hotcost.serve([])\n"
    )
    env = {**os.environ, "HOTCOST_GC_OUT": str(out), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():  # SIGUSR1 before its handler would end the process
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        got = gc_stats(proc.pid, out)
        assert got["collections"][2] == 3
        assert all(s >= 0 for s in got["seconds"])
        assert json.loads(out.read_text()) == got
    finally:
        proc.kill()
        proc.wait()


def test_switches_counts_a_sleepers_voluntary_switches() -> None:
    from benchmarks.hotcost import _switches

    vol0, _ = _switches([os.getpid()])
    for _ in range(5):
        time.sleep(0.01)
    vol1, _ = _switches([os.getpid()])
    assert vol1 - vol0 >= 5
