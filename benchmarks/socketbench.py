"""Vote path and fan-out benchmarks against real server processes on 127.0.0.1.

The server (``python -m clickvote serve``, SQLite in a temporary data directory, rate
limits raised through CLICKVOTE_* variables) and the two ack-only baselines (python-socketio:
benchmarks/baseline_server.py; Node socket.io: benchmarks/node/server.js) each run in their own
process; the load comes from benchmarks/loadgen.py processes, which also measure the server
process's own CPU time over the votes (benchmarks/procstat.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import requests

from clickvote.client import SioClient, free_port, limits_off_env

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
# one server process, as these figures always measured (`--workers` rows: workers_path)
SERVER_ENV = {**limits_off_env(), "CLICKVOTE_WORKERS": "1"}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def stop(proc: subprocess.Popen[Any], grace: float = 10) -> None:
    """SIGTERM, `grace` seconds to exit, then SIGKILL."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def process(cmd: list[str], url: str, env: dict[str, str] | None = None) -> Iterator[int]:
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})})
    try:
        wait_http(url, proc)
        yield proc.pid
    finally:
        stop(proc)


@contextmanager
def clickvote_server(env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    with tempfile.TemporaryDirectory(prefix="clickvote-bench-") as data:
        port = free_port()
        cmd = [PY, "-m", "clickvote", "serve", "--port", str(port), "--data-dir", data]
        url = f"http://127.0.0.1:{port}"
        with process(cmd, url + "/healthz", {**SERVER_ENV, **(env or {})}) as pid:
            yield url, pid


@contextmanager
def baseline_server() -> Iterator[tuple[str, int]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [PY, "-m", "benchmarks.baseline_server", str(port)]
    with process(cmd, url + "/socket.io/?EIO=4") as pid:
        yield url, pid


@contextmanager
def node_server() -> Iterator[tuple[str, int]]:
    """The Node socket.io ack-only baseline (installed by npm on first use)."""
    from benchmarks import nodebase

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process(nodebase.command(port), url + "/socket.io/?EIO=4&transport=polling") as pid:
        yield url, pid


def setup_env(url: str, groups: tuple[str, ...] = ("likes",)) -> str:
    """Register a dashboard user, create groups; returns a socket login token."""
    http = requests.Session()
    r = http.post(
        url + "/auth/register",
        json={"email": f"b{uuid.uuid4().hex[:10]}@example.com", "password": "password123"},
        timeout=10,
    )
    r.raise_for_status()
    http.headers["X-CSRF-Token"] = str(http.cookies["csrftoken"])
    for g in groups:
        http.post(
            url + "/votes/", json={"name": g, "type": "single"}, timeout=10
        ).raise_for_status()
    pk = http.get(url + "/settings/", timeout=10).json()["publicKey"]

    async def login() -> str:
        c = SioClient(url)
        await c.connect()
        ack = await c.call("login", {"apiKey": pk})
        await c.close()
        return str(ack["token"])

    return asyncio.run(login())


def loadgen(url: str, token: str, timeout: float = 300, **opts: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="clickvote-loadgen-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [PY, "-m", "benchmarks.loadgen", "votes", "--url", url, "--token", token]
        cmd += ["--out", str(out)]
        for k, v in opts.items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        subprocess.run(cmd, cwd=ROOT, timeout=timeout, check=True)
        res: dict[str, Any] = json.loads(out.read_text())
    lat = res.pop("lat_ms")
    cpu = res.get("server_cpu", float("nan"))
    res.update(
        rate=res["acked"] / res["seconds"],
        cpu_us=1e6 * cpu / res["acked"] if res["acked"] else float("nan"),
        p50=pct(lat, 50),
        p99=pct(lat, 99),
        mean=statistics.fmean(lat) if lat else float("nan"),
    )
    return res


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one load against one server: each figure's median over the rounds, the
    counts summed, and every round's rate kept (`rates`) to show the spread."""
    return {
        "rate": statistics.median(r["rate"] for r in runs),
        "p50": statistics.median(r["p50"] for r in runs),
        "p99": statistics.median(r["p99"] for r in runs),
        "cpu_us": statistics.median(r["cpu_us"] for r in runs),
        "acked": sum(r["acked"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "rates": [r["rate"] for r in runs],
    }


def vote_path(
    duration: float = 5, clients: int = 100, rounds: int = 3, errors: list[str] | None = None
) -> dict[str, Any]:
    """Fixed 1,000 votes/s and saturation, ClickVote vs the ack-only baselines
    (python-socketio: "baseline_*"; Node socket.io: "node_sat", left out with a line in
    `errors` where node or its install is missing), each server's CPU per acked vote beside.

    The servers run side by side and the loads take turns, `rounds` times: the machine's
    background noise (these are shared machines) then falls on all alike, and the medians
    drop an odd round out."""
    runs: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("baseline_fixed", "fixed", "baseline_sat", "sat", "node_sat")
    }
    fixed = {"clients": clients, "rate": 1000, "duration": duration}
    sat = {"clients": clients, "window": 2, "duration": duration}
    with ExitStack() as stack:
        base, base_pid = stack.enter_context(baseline_server())
        url, pid = stack.enter_context(clickvote_server())
        try:
            node, node_pid = stack.enter_context(node_server())
        except Exception as e:  # no node here: the other rows still count
            (errors if errors is not None else []).append(f"Node baseline: {e}")
            node, node_pid = "", 0
        token = setup_env(url)
        loadgen(url, token, clients=clients, rate=300, duration=2, tag="warm")
        for r in range(rounds):  # each round its own voters and msgIds (no replays)
            runs["baseline_fixed"].append(loadgen(base, "x", **fixed))
            runs["fixed"].append(loadgen(url, token, **fixed, tag=f"f{r}"))
            runs["baseline_sat"].append(loadgen(base, "x", **sat, server_pid=base_pid))
            runs["sat"].append(loadgen(url, token, **sat, tag=f"s{r}", server_pid=pid))
            if node:
                runs["node_sat"].append(loadgen(node, "x", **sat, server_pid=node_pid))
    return {k: median_of(v) for k, v in runs.items() if v}


def workers_path(duration: float = 5, clients: int = 100, rounds: int = 3) -> dict[str, Any]:
    """vote_path's saturation load against `clickvote serve --workers 1` and `--workers 2`,
    side by side, the loads taking turns; CPU per acked vote sums all of a server's processes
    (supervisor and workers), as for every server here."""
    sat = {"clients": clients, "window": 2, "duration": duration}
    runs: dict[str, list[dict[str, Any]]] = {"workers_1": [], "workers_2": []}
    with ExitStack() as stack:
        servers = {
            key: stack.enter_context(clickvote_server({"CLICKVOTE_WORKERS": key[-1]}))
            for key in runs
        }
        tokens = {key: setup_env(url) for key, (url, _) in servers.items()}
        for key, (url, _) in servers.items():
            loadgen(url, tokens[key], clients=clients, rate=300, duration=2, tag="warm")
        for r in range(rounds):
            for key, (url, pid) in servers.items():
                runs[key].append(loadgen(url, tokens[key], **sat, tag=f"s{r}", server_pid=pid))
    return {k: median_of(v) for k, v in runs.items()}


@contextmanager
def watcher_processes(
    module: str, url: str, token: str, watchers: int, procs: int
) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """`watchers` watching sockets spread over `procs` processes of `python -m module watch`,
    each ready once this yields; the function it yields ends them (they stop when their stdin
    closes) and returns each one's JSON result. Any still running at exit are killed."""
    with tempfile.TemporaryDirectory() as tmp:
        per = [watchers // procs + (1 if i < watchers % procs else 0) for i in range(procs)]
        cmd = [PY, "-m", module, "watch", "--url", url, "--token", token]
        outs = [Path(tmp) / f"watch{i}.json" for i in range(procs)]
        ps = [
            subprocess.Popen(
                [*cmd, "--clients", str(n), "--out", str(out)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n, out in zip(per, outs, strict=True)
        ]

        def results() -> list[dict[str, Any]]:
            got = []
            for p, out in zip(ps, outs, strict=True):
                p.communicate("", timeout=60)
                got.append(json.loads(out.read_text()))
            return got

        try:
            for p in ps:
                assert p.stdout is not None
                line = p.stdout.readline().strip()
                if line != "ready":
                    raise RuntimeError(f"watcher failed: {line!r}")
            yield results
        finally:
            for p in ps:
                if p.poll() is None:
                    p.kill()


def fanout(watchers: int = 1000, procs: int = 4, votes: int = 20, gap: float = 0.25) -> dict:
    """Time from a vote's emit to its broadcast at each of `watchers` sockets on one item."""
    with clickvote_server() as (url, _pid):
        token = setup_env(url)
        with watcher_processes("benchmarks.loadgen", url, token, watchers, procs) as results:
            sent = asyncio.run(_fanout_votes(url, token, votes, gap))
            arrivals: dict[int, list[float]] = {}
            for got in results():
                for k, v in got["arrivals"].items():
                    arrivals.setdefault(int(k), []).extend(v)
    lat = [(t - sent[k]) * 1000 for k, ts in arrivals.items() if k in sent for t in ts]
    expected = watchers * votes
    return {
        "watchers": watchers,
        "votes": votes,
        "delivered": len(lat),
        "expected": expected,
        "p50": pct(lat, 50),
        "p99": pct(lat, 99),
        "max": max(lat) if lat else float("nan"),
    }


async def _fanout_votes(url: str, token: str, votes: int, gap: float) -> dict[int, float]:
    c = SioClient(url)
    await c.connect()
    sent: dict[int, float] = {}
    for i in range(votes):
        t0 = time.monotonic()
        ack = await c.call(
            "vote",
            {"id": "likes", "voteTo": "hot", "userId": f"fan{i}", "value": 1, "token": token},
        )
        assert ack.get("ok"), ack
        sent[int(ack["total"]["count"])] = t0
        await asyncio.sleep(gap)
    await asyncio.sleep(1.0)
    await c.close()
    return sent


if __name__ == "__main__":
    print(json.dumps(vote_path(duration=3, rounds=1), indent=1, default=str))
    print(json.dumps(fanout(watchers=200, procs=2, votes=5), indent=1))
