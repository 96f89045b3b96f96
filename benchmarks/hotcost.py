"""What a vote costs the server beside N watchers of its item: ``python -m benchmarks.hotcost``.

callgrind: the server (window 100 ms) runs under valgrind's callgrind, instrumentation off
           until N watchers (benchmarks/hotbench.py's) watch the item and `--votes` / 4 votes
           have warmed it; then it counts the instructions of `--votes` acked votes, with the
           frames the watchers got meanwhile. User-space instructions only (no kernel), and
           not moved by the machine's other load. `--keep DIR`: the counts, one file per N,
           for callgrind_annotate.
stat:      the server (window 100 ms) at full speed, N watchers, hotbench's votes for
           DURATION s: per acked vote, its user and system CPU (/proc/PID/stat), the
           machine's softirq time (/proc/stat) and NET_RX / NET_TX softirqs (/proc/softirqs),
           and the garbage collector's collections and their time (gc.callbacks, in the
           server, by `serve`).
serve:     `python -m clickvote ARGS` with the collector's collections counted; SIGUSR1
           writes them (JSON) to $HOTCOST_GC_OUT.
A diagnostic, not part of `inv bench`; needs valgrind (apt) for callgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import hotbench, socketbench
from benchmarks.procstat import children
from benchmarks.profile import _dumped, _total_ir
from benchmarks.socketbench import PY, ROOT, SERVER_ENV, free_port, setup_env

WINDOW = "0.1"
IDLE_AFTER = 45.0  # s: the Engine.IO (25 s) and WebSocket (20 s) keepalives of every socket
TICK = os.sysconf("SC_CLK_TCK")


@contextmanager
def hot_server(
    prefix: list[str], gc_out: Path, timeout: float, window: str = WINDOW
) -> Iterator[tuple[str, int]]:
    """(url, pid) of `clickvote serve` (window `window` s) behind `prefix`, its collections
    counted (`serve`)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="clickvote-hotcost-") as data:
        cmd = [PY, "-m", "benchmarks.hotcost", "serve", "--port", str(port), "--data-dir", data]
        env = {**os.environ, **SERVER_ENV, "CLICKVOTE_BROADCAST_WINDOW": window}
        proc = subprocess.Popen(
            [*prefix, *cmd], cwd=ROOT, env={**env, "HOTCOST_GC_OUT": str(gc_out)}
        )
        try:
            socketbench.wait_http(url + "/healthz", proc, timeout)
            yield url, proc.pid
        finally:
            socketbench.stop(proc, grace=120)


def gc_stats(pid: int, path: Path) -> dict[str, list[float]]:
    """The server's collections so far (per generation, how many and their seconds) and its
    pings sent."""
    path.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 120
    while not path.exists() or not path.read_text().endswith("\n"):
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not write its collections")
        time.sleep(0.05)
    got: dict[str, list[float]] = json.loads(path.read_text())
    return got


def _gc_delta(a: dict[str, list[float]], b: dict[str, list[float]]) -> dict[str, list[float]]:
    return {k: [y - x for x, y in zip(a[k], b[k], strict=True)] for k in a}


def frames_between(results: list[dict[str, Any]], start: float, seconds: float) -> int:
    first, last = int(start / hotbench.BIN), int((start + seconds) / hotbench.BIN)
    return sum(v for got in results for b, v in got["bins"].items() if first <= int(b) <= last)


def callgrind(
    watchers: int, votes: int, keep: Path | None, window: str, idle: float = 0
) -> dict[str, Any]:
    """Instructions per acked vote beside `watchers`; `idle` > 0: no votes counted, the
    instructions of `idle` seconds with the watchers connected ("per_second")."""
    vg, ctl = shutil.which("valgrind"), shutil.which("callgrind_control")
    if vg is None or ctl is None:
        raise SystemExit("valgrind is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        out, gc_out = Path(tmp) / "callgrind.out", Path(tmp) / "gc.json"
        prefix = [vg, "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
        with hot_server(prefix, gc_out, 600, window) as (url, pid):
            token = setup_env(url)
            procs = min(hotbench.WATCH_PROCS, watchers)
            watching = hotbench.watcher_processes(
                "benchmarks.hotbench", url, token, watchers, procs
            )
            with watching as results:
                asyncio.run(hotbench.vote(url, token, "warm-", 3600, limit=votes // 4))
                time.sleep(IDLE_AFTER if idle else 0)  # every socket's keepalives running
                gc0 = gc_stats(pid, gc_out)
                subprocess.run([ctl, "-i", "on", str(pid)], check=True, stdout=subprocess.DEVNULL)
                if idle:
                    acked, start, secs = 1, time.monotonic(), idle
                    time.sleep(idle)
                else:
                    _, acked, start, secs, _ = asyncio.run(
                        hotbench.vote(url, token, "cg-", 3600, limit=votes)
                    )
                subprocess.run([ctl, "-d", str(pid)], check=True, stdout=subprocess.DEVNULL)
                gc1 = gc_stats(pid, gc_out)
                time.sleep(1.0)
                frames = frames_between(results(), start, secs)
        dumps = [p for p in Path(tmp).glob("callgrind.out*") if _dumped(p)]
        ir = sum(_total_ir(p) for p in dumps)
        if keep is not None and dumps:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dumps[0], keep / f"callgrind.w{window}.n{watchers}.out")
    return {
        "watchers": watchers,
        "window": window,
        "acked": acked,
        "seconds": secs,
        "instructions": ir,
        "per_vote": ir / acked,
        "per_second": ir / secs,
        "frames": frames,
        "frames_per_vote": frames / acked,
        "gc": _gc_delta(gc0, gc1),
    }


def _proc_times(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def _softirq() -> tuple[float, int, int]:
    """(machine's softirq seconds, NET_TX, NET_RX softirqs, all CPUs)."""
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()
    rows = {
        line.split(":")[0].strip(): sum(int(x) for x in line.split(":")[1].split())
        for line in Path("/proc/softirqs").read_text().splitlines()[1:]
    }
    return int(cpu[7]) / TICK, rows["NET_TX"], rows["NET_RX"]


def _switches(pids: list[int]) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of `pids`' threads, summed."""
    vol = invol = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                lines = (task / "status").read_text().splitlines()
            except (FileNotFoundError, ProcessLookupError):
                continue
            for line in lines:
                if line.startswith("voluntary_ctxt_switches"):
                    vol += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    invol += int(line.split()[1])
    return vol, invol


@contextmanager
def perf_record(pid: int, out: Path | None) -> Iterator[None]:
    """perf's cpu-clock samples (999 Hz, call graphs, kernel included) of `pid` into `out`."""
    if out is None:
        yield
        return
    rec = subprocess.Popen(
        ["perf", "record", "-e", "cpu-clock", "-F", "999", "-g", "-p", str(pid), "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)  # perf attached
        yield
    finally:
        rec.send_signal(signal.SIGINT)
        rec.wait(60)


def stat(watchers: int, window: str, perf: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        gc_out = Path(tmp) / "gc.json"
        with hot_server([], gc_out, 60, window) as (url, pid):
            token = setup_env(url)
            procs = min(hotbench.WATCH_PROCS, watchers)
            watching = hotbench.watcher_processes(
                "benchmarks.hotbench", url, token, watchers, procs
            )
            with watching as results:
                asyncio.run(hotbench.vote(url, token, "warm-", hotbench.WARM_UP))
                others = [p for p in children(os.getpid()) if p != pid]
                out = None if perf is None else perf / f"perf.w{window}.n{watchers}.data"
                with perf_record(pid, out):
                    gc0, t0, s0 = gc_stats(pid, gc_out), _proc_times(pid), _softirq()
                    c0, w0 = _switches([pid]), _switches(others)
                    _, acked, start, secs, _ = asyncio.run(hotbench.vote(url, token, "v-"))
                    c1, w1 = _switches([pid]), _switches(others)
                    gc1, t1, s1 = gc_stats(pid, gc_out), _proc_times(pid), _softirq()
                time.sleep(1.0)
                frames = frames_between(results(), start, secs)
    us = 1e6 / acked
    return {
        "watchers": watchers,
        "window": window,
        "votes_per_s": acked / secs,
        "frames_per_s": frames / secs,
        "user_us_per_vote": (t1[0] - t0[0]) * us,
        "system_us_per_vote": (t1[1] - t0[1]) * us,
        "server_cores": (t1[0] + t1[1] - t0[0] - t0[1]) / secs,
        "machine_softirq_us_per_vote": (s1[0] - s0[0]) * us,
        "net_tx_rx_per_vote": [(s1[1] - s0[1]) / acked, (s1[2] - s0[2]) / acked],
        "server_switches_per_vote": [(b - a) / acked for a, b in zip(c0, c1, strict=True)],
        "watcher_switches_per_frame": [
            (b - a) / max(1, frames) for a, b in zip(w0, w1, strict=True)
        ],
        "gc": _gc_delta(gc0, gc1),
        "load_average": os.getloadavg()[0],
    }


def serve(args: list[str]) -> None:
    """`python -m clickvote serve ARGS`, each generation's collections and seconds counted,
    and the Engine.IO pings sent."""
    from clickvote.engineio import Session

    counts, secs, started, pings = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0], [0.0]
    ping = Session._ping

    def counted_ping(session: Session) -> None:
        pings[0] += 1
        ping(session)

    Session._ping = counted_ping  # type: ignore[method-assign]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            counts[info["generation"]] += 1
            secs[info["generation"]] += time.perf_counter() - started[0]

    profiler = cProfile.Profile() if os.environ.get("HOTCOST_CPROFILE") else None
    profiling = [False]

    def dump(*_: Any) -> None:
        path = Path(os.environ["HOTCOST_GC_OUT"])
        if profiler is not None:  # on between two dumps; its counts written at the second
            profiling[0] = not profiling[0]
            if profiling[0]:
                profiler.enable()
            else:
                profiler.disable()
                profiler.dump_stats(path.with_suffix(".prof"))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"collections": counts, "seconds": secs, "pings": pings}) + "\n")
        tmp.replace(path)

    gc.callbacks.append(on_gc)
    signal.signal(signal.SIGUSR1, dump)
    sys.argv = ["clickvote", "serve", *args]
    runpy.run_module("clickvote", run_name="__main__", alter_sys=True)


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["callgrind", "stat"])
    p.add_argument("--watchers", type=int, nargs="+", default=[1, 1000])
    p.add_argument("--votes", type=int, default=1000, help="callgrind: acked votes counted")
    p.add_argument("--keep", type=Path, help="callgrind: a directory for the counts")
    p.add_argument("--perf", type=Path, help="stat: perf's samples of the votes, to this directory")
    p.add_argument("--idle", type=float, default=0, help="callgrind: idle seconds counted")
    p.add_argument("--window", default=WINDOW, help="the broadcast window (s)")
    args = p.parse_args()
    for n in args.watchers:
        got = (
            callgrind(n, args.votes, args.keep, args.window, args.idle)
            if args.mode == "callgrind"
            else stat(n, args.window, args.perf)
        )
        print(json.dumps(got), flush=True)


if __name__ == "__main__":
    main()
