"""A process's own CPU time from /proc/PID/stat (Linux), without psutil; and a server's, all
its processes summed (`clickvote serve --workers N`: the supervisor and its workers)."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds `pid` has used so far (all its threads)."""
    # fields after "(comm)": state is the 3rd field of the line, utime the 14th, stime the 15th
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The processes `pid` started that still run."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except FileNotFoundError:  # the thread ended meanwhile
            continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and of every process under it (one process: cpu_seconds)."""
    total = cpu_seconds(pid)
    for child in children(pid):
        try:
            total += tree_cpu_seconds(child)
        except FileNotFoundError:  # it ended meanwhile
            continue
    return total


def sched_seconds(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of all `pid`'s threads, from
    /proc/PID/task/*/schedstat: a process starved by the machine's other load shows a large
    wait; one blocked on itself (a lock, a full socket) shows neither."""
    run = wait = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "schedstat").read_text().split()
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
        run, wait = run + int(fields[0]), wait + int(fields[1])
    return run / 1e9, wait / 1e9
