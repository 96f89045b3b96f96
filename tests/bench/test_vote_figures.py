"""`inv bench`'s vote path figures: the server's own CPU time, the rows side by side. Marked
host: the benchmarks are not in the images."""

from __future__ import annotations

import math
import os
import time
from typing import Any

import pytest

pytestmark = pytest.mark.host


def bench_run() -> Any:
    # imported in the tests, not at collection: the images carry no benchmarks/run.py
    from benchmarks import run

    return run


def test_cpu_seconds_is_the_process_own_cpu_time() -> None:
    from benchmarks.procstat import cpu_seconds

    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # bounded busy loop
        pass
    after = cpu_seconds(os.getpid())
    t = os.times()
    assert after - before >= 0.2
    assert abs(after - (t.user + t.system)) <= 0.05  # the same clock as the kernel's times()


def sat(rate: float, cpu_us: float) -> dict[str, float]:
    return {"rate": rate, "cpu_us": cpu_us, "p50": 10.0, "p99": 20.0, "rates": [rate]}


FIXED = {"rate": 1000.0, "p50": 1.0, "p99": 5.0, "acked": 5000, "errors": 0, "cpu_us": math.nan}


def test_vote_rows_put_both_baselines_beside_clickvote() -> None:
    vp = {
        "sat": sat(8000, 80),
        "baseline_sat": sat(4000, 250),
        "node_sat": sat(14000, 45),
        "fixed": FIXED,
        "baseline_fixed": FIXED,
    }
    rows = {r.figure: r for r in bench_run().vote_rows(vp)}
    cpu = rows["server CPU per acked vote"]
    assert (cpu.value, cpu.ok) == (80, True)
    assert "python-socketio 250 us" in cpu.baseline and "Node 45 us" in cpu.baseline
    assert rows["saturation vs Node socket.io"].ok is True  # 57 % >= 50 %
    assert rows["votes/s at saturation"].ok is True  # above python-socketio's
    table = bench_run().servers_table(vp)
    assert "| ClickVote (durable SQLite) | 8,000 | 80 us |" in table
    assert "| Node socket.io, ack only (no storage) | 14,000 | 45 us |" in table
    vp["sat"] = sat(3000, 349)
    rows = {r.figure: r for r in bench_run().vote_rows(vp)}
    assert rows["server CPU per acked vote"].ok is False
    assert rows["saturation vs Node socket.io"].ok is False
    assert rows["votes/s at saturation"].ok is False


def test_without_node_its_figures_are_missing_not_invented() -> None:
    vp = {"sat": sat(3000, 300), "baseline_sat": sat(4000, 250), "fixed": FIXED,
          "baseline_fixed": FIXED}  # fmt: skip
    rows = {r.figure: r for r in bench_run().vote_rows(vp)}
    vs_node = rows["saturation vs Node socket.io"]
    assert math.isnan(vs_node.value) and vs_node.ok is False
    assert "Node" not in bench_run().servers_table(vp)


def test_workers_rows_put_one_worker_beside_two() -> None:
    wk = {"workers_1": sat(5000, 120), "workers_2": sat(7000, 150)}
    rows = {r.figure: r for r in bench_run().workers_rows(wk)}
    rate = rows["votes/s at saturation, --workers 2"]
    assert (rate.value, rate.baseline) == (7000, "--workers 1 5,000/s")
    cpu = rows["server CPU per acked vote, --workers 2 (all processes)"]
    assert (cpu.value, cpu.baseline) == (150, "--workers 1 120 us")


def test_a_servers_cpu_sums_its_worker_processes() -> None:
    import subprocess
    import sys

    from benchmarks.procstat import cpu_seconds, tree_cpu_seconds

    worker = "import time\nt = time.process_time() + 0.3\nwhile time.process_time() < t: pass\n"
    worker += "time.sleep(30)\n"
    server = "import subprocess, sys\np = subprocess.Popen([sys.executable, '-c', sys.argv[1]])\n"
    server += "sys.stdin.read()\np.kill()\n"
    proc = subprocess.Popen([sys.executable, "-c", server, worker], stdin=subprocess.PIPE)

    def workers_cpu() -> float:
        return tree_cpu_seconds(proc.pid) - cpu_seconds(proc.pid)

    try:
        deadline = time.monotonic() + 20  # a liveness bound
        while workers_cpu() < 0.2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert workers_cpu() >= 0.2
    finally:
        proc.communicate(b"", timeout=20)
