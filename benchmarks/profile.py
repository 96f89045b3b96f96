"""Where a saturated server's CPU goes per acked vote: ``python -m benchmarks.profile MODE``.

pyspy:     py-spy samples `clickvote serve` (or --server baseline) while benchmarks/loadgen.py
           keeps it saturated (100 sockets, 2 votes in flight each); prints the share of
           samples per function (own time and with what it calls) and per source file;
           `--workers N`: `clickvote serve --workers N`, every process sampled.
hot:       py-spy samples `clickvote serve` (window 100 ms) while benchmarks/hotbench.py's 1,000
           watchers watch one item and its voters vote on it: where the broadcasts' time goes.
callgrind: the server runs under valgrind's callgrind with instrumentation off until it is
           warm; then it counts the instructions spent on a fixed number of acked votes
           from one loadgen process (`--votes`), and prints instructions per acked vote.
           Instruction counts do not move with the machine's other load, so they compare
           two versions of the code where wall-clock figures on a shared machine cannot.
Needs py-spy (pip) or valgrind (apt) on the host; a diagnostic, not part of `inv bench`.
What a vote costs beside 1,000 watchers (callgrind, /proc, perf, the collector):
benchmarks/hotcost.py.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import socketbench
from benchmarks.socketbench import PY, ROOT, SERVER_ENV, free_port, loadgen, setup_env

SAT = {"clients": 100, "window": 2}


@contextmanager
def server(
    kind: str, prefix: list[str], timeout: float, workers: int = 1
) -> Iterator[tuple[str, str, int]]:
    """(url, token, pid) of a running server, its command line behind `prefix`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="clickvote-profile-") as data:
        if kind == "clickvote":
            cmd = [PY, "-m", "clickvote", "serve", "--port", str(port), "--data-dir", data]
            probe = url + "/healthz"
        else:
            cmd = [PY, "-m", "benchmarks.baseline_server", str(port)]
            probe = url + "/socket.io/?EIO=4"
        env = {**os.environ, **SERVER_ENV, "CLICKVOTE_WORKERS": str(workers)}
        proc = subprocess.Popen([*prefix, *cmd], cwd=ROOT, env=env)
        try:
            socketbench.wait_http(probe, proc, timeout)
            token = setup_env(url) if kind == "clickvote" else "x"
            yield url, token, proc.pid
        finally:
            socketbench.stop(proc, grace=60)


def pyspy(kind: str, seconds: float, top: int, workers: int = 1) -> None:
    spy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    more = ["--subprocesses"] if workers > 1 else []
    with server(kind, [], 30, workers) as (url, token, pid), tempfile.TemporaryDirectory() as tmp:
        loadgen(url, token, **SAT, duration=2, tag="warm")
        out = Path(tmp) / "stacks.txt"
        rec = subprocess.Popen(
            [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "250", "-f", "raw",
             "-o", str(out), "--nonblocking", *more],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        res = loadgen(url, token, **SAT, duration=seconds + 1, tag="spy")
        rec.wait(seconds + 60)
        stacks = out.read_text().splitlines()
    print(f"{kind}: {res['rate']:,.0f} votes/s acked while sampled")
    report(stacks, top)


def hot(seconds: float, top: int, watchers: int = 1000) -> None:
    from benchmarks import hotbench

    spy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    env = {"CLICKVOTE_BROADCAST_WINDOW": "0.1"}
    with (
        socketbench.clickvote_server(env) as (url, pid),
        tempfile.TemporaryDirectory() as tmp,
    ):
        token = setup_env(url)
        with hotbench.watcher_processes("benchmarks.hotbench", url, token, watchers, 2):
            asyncio.run(hotbench.vote(url, token, "warm-", hotbench.WARM_UP))
            out = Path(tmp) / "stacks.txt"
            rec = subprocess.Popen(
                [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "250", "-f",
                 "raw", "-o", str(out), "--nonblocking"],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            _, acked, _, secs, _ = asyncio.run(hotbench.vote(url, token, "spy-", seconds + 1))
            rec.wait(seconds + 60)
            stacks = out.read_text().splitlines()
    print(f"hot item: {acked / secs:,.0f} votes/s acked while sampled")
    report(stacks, top)


def report(lines: list[str], top: int) -> None:
    """Collapsed stacks ("f1;f2;f3 count") as shares: own, inclusive, and by file."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    files: collections.Counter[str] = collections.Counter()
    total = 0
    for line in lines:
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        count = int(n)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
        files[_file(frames[-1])] += count
    for title, counter in (("own", own), ("inclusive", incl), ("own, by file", files)):
        print(f"\n-- {title} (% of {total} samples)")
        for name, n in counter.most_common(top):
            print(f"{100 * n / total:5.1f} %  {name}")


def _file(frame: str) -> str:
    # py-spy frames read "function (path/to/file.py:line)"
    inside = frame.rpartition("(")[2].rstrip(")")
    return inside.rpartition(":")[0] or frame


def callgrind(kind: str, votes: int, keep: Path | None = None) -> float:
    vg = shutil.which("valgrind")
    ctl = shutil.which("callgrind_control")
    if vg is None or ctl is None:
        raise SystemExit("valgrind is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        prefix = [vg, "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
        with server(kind, prefix, 600) as (url, token, pid):
            # acks may take long under callgrind on a busy machine: none is given up on
            slow = {**SAT, "grace": 1200, "duration": 3000}
            loadgen(url, token, timeout=3600, **slow, count=votes // 4, tag="warm")
            subprocess.run([ctl, "-i", "on", str(pid)], check=True, stdout=subprocess.DEVNULL)
            t0 = time.monotonic()
            res = loadgen(url, token, timeout=3600, **slow, count=votes, tag="cg")
            subprocess.run([ctl, "-d", str(pid)], check=True, stdout=subprocess.DEVNULL)
            secs = time.monotonic() - t0
        dumps = [p for p in Path(tmp).glob("callgrind.out*") if _dumped(p)]
        ir = sum(_total_ir(p) for p in dumps)
        if keep is not None and dumps:  # for callgrind_annotate: where the instructions went
            shutil.copy2(dumps[0], keep)
    per = ir / res["acked"]
    print(
        f"{kind}: {res['acked']} votes acked ({res['errors']} errors) in {secs:.0f} s under "
        f"callgrind: {ir:,} instructions, {per:,.0f} per acked vote"
    )
    return per


def _dumped(path: Path) -> bool:
    """The dump taken after the votes (its trigger names callgrind_control), not the one
    written at exit (the server's shutdown)."""
    with path.open() as f:  # the header line reads "desc: Trigger: Program termination"
        return not any("Trigger: Program termination" in line for line in f)


def _total_ir(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["pyspy", "hot", "callgrind"])
    p.add_argument("--server", choices=["clickvote", "baseline"], default="clickvote")
    p.add_argument("--seconds", type=float, default=10, help="pyspy: seconds sampled")
    p.add_argument("--top", type=int, default=25, help="pyspy: rows per table")
    p.add_argument("--workers", type=int, default=1, help="pyspy: clickvote serve --workers N")
    p.add_argument("--votes", type=int, default=2000, help="callgrind: acked votes counted")
    p.add_argument("--keep", type=Path, help="callgrind: copy the counts to this file")
    args = p.parse_args()
    if args.mode == "pyspy":
        pyspy(args.server, args.seconds, args.top, args.workers)
    elif args.mode == "hot":
        hot(args.seconds, args.top)
    else:
        callgrind(args.server, args.votes, args.keep)


if __name__ == "__main__":
    sys.exit(main())
