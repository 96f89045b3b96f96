"""Load generator process: ``python -m benchmarks.loadgen votes|watch --url ... [options]``.

votes: C sockets send `vote` with acks, either open-loop at a fixed offered rate (--rate)
       or closed-loop at saturation (--rate 0: every socket keeps --window votes in
       flight; --count N: N votes in all, still within --duration). Writes one JSON object
       to --out: acked, errors, seconds, latencies (ms), and with --server-pid the CPU
       seconds that process used from the first vote sent to the last one answered.
watch: N sockets watch one item (`get-votes`), print "ready", then record the arrival
       time (time.monotonic, system-wide) of every broadcast, keyed by total count;
       on stdin EOF write the arrivals as JSON to --out.
The result goes to a file, not stdout: libuv leaves the standard streams non-blocking, and
a result of some 100 kB written to a full pipe came out cut short.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

from clickvote.client import SioClient


async def connect_all(url: str, n: int, on_event: Any = None) -> list[SioClient]:
    out: list[SioClient] = []
    sem = asyncio.Semaphore(50)

    async def one() -> None:
        async with sem:
            c = SioClient(url, on_event)
            await c.connect()
            out.append(c)

    await asyncio.gather(*(one() for _ in range(n)))
    return out


def vote_msg(args: argparse.Namespace, client: int, seq: int) -> dict[str, Any]:
    return {
        "id": args.group,
        "voteTo": f"item{client % args.items}",  # 2 sockets per item room at 100/50
        "userId": f"u{args.tag}-{client}-{seq % 50}",
        "value": seq % 2 if args.group else 1,
        "token": args.token,
        "msgId": f"{args.tag}-{client}-{seq}",
    }


async def votes(args: argparse.Namespace) -> dict[str, Any]:
    clients = await connect_all(args.url, args.clients)
    lat: list[float] = []
    errors = 0
    acked = 0
    deadline_grace = args.grace

    async def track(fut: asyncio.Future[Any], t0: float) -> None:
        nonlocal acked, errors
        try:
            ack = await asyncio.wait_for(fut, deadline_grace)
        except Exception:
            errors += 1
            return
        if isinstance(ack, dict) and ack.get("ok"):
            acked += 1
            lat.append((time.monotonic() - t0) * 1000)
        else:
            errors += 1

    if args.server_pid:
        from benchmarks.procstat import tree_cpu_seconds  # (not in the images)
    # the server's CPU: its own, and its workers' where it runs several (the same sum for all)
    cpu0 = tree_cpu_seconds(args.server_pid) if args.server_pid else 0.0
    start = time.monotonic()
    end = start + args.duration
    pending: list[asyncio.Task[None]] = []
    if args.rate > 0:  # open loop: send i at start + i/rate, no matter how acks come back
        i = 0
        while True:
            t = start + i / args.rate
            if t >= end:
                break
            now = time.monotonic()
            if t > now:
                await asyncio.sleep(t - now)
            c = i % len(clients)
            fut = clients[c].call_nowait("vote", vote_msg(args, c, i // len(clients)))
            pending.append(asyncio.create_task(track(fut, t)))
            i += 1
        await asyncio.gather(*pending)
        elapsed = time.monotonic() - start
    else:
        # one sequence per socket, shared by its --window votes in flight, so every vote has
        # its own msgId (with a sequence per slot, each msgId went out `window` times and all
        # but the first were answered as idempotent replays: no write, no broadcast)
        seqs = [itertools.count() for _ in clients]
        budget = itertools.count(1)  # votes sent so far, against --count

        async def loop(c: int) -> None:
            while time.monotonic() < end and (not args.count or next(budget) <= args.count):
                t0 = time.monotonic()
                await track(clients[c].call_nowait("vote", vote_msg(args, c, next(seqs[c]))), t0)

        await asyncio.gather(*(loop(c) for c in range(len(clients)) for _ in range(args.window)))
        elapsed = time.monotonic() - start
    # the server's CPU over the votes alone (every one answered): not the connects or closes
    cpu = tree_cpu_seconds(args.server_pid) - cpu0 if args.server_pid else float("nan")
    for client in clients:
        await client.close()
    return {"acked": acked, "errors": errors, "seconds": elapsed, "lat_ms": lat, "server_cpu": cpu}


async def watch(args: argparse.Namespace) -> dict[str, Any]:
    arrivals: dict[int, list[float]] = {}
    event = f"get-votes-{args.group}-{args.item}"

    def on_event(name: str, data: Any, now: float) -> None:
        if name == event and isinstance(data, dict) and "poster" in data:
            arrivals.setdefault(int(data["total"]["count"]), []).append(now)

    clients = await connect_all(args.url, args.clients, on_event)
    sem = asyncio.Semaphore(50)

    async def join(c: SioClient) -> None:
        async with sem:
            ack = await c.call(
                "get-votes", {"id": args.group, "voteTo": args.item, "token": args.token}
            )
            assert ack.get("ok"), ack

    await asyncio.gather(*(join(c) for c in clients))
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for c in clients:
        await c.close()
    return {"arrivals": {str(k): v for k, v in arrivals.items()}}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["votes", "watch"])
    p.add_argument("--url", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--group", default="likes")
    p.add_argument("--item", default="hot")
    p.add_argument("--items", type=int, default=50)
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--window", type=int, default=1)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument(
        "--count", type=int, default=0, help="saturation: stop after this many votes (0: no limit)"
    )
    p.add_argument("--tag", default="lg")
    p.add_argument("--grace", type=float, default=10, help="votes: seconds an ack may take")
    p.add_argument(
        "--server-pid", type=int, default=0, help="votes: the server's CPU time is measured too"
    )
    p.add_argument("--out", required=True, help="file the JSON result is written to")
    args = p.parse_args()
    try:  # the lighter event loop where there is one: more of the CPU left to the server
        from uvloop import run
    except ImportError:
        run = asyncio.run
    result = run(votes(args) if args.mode == "votes" else watch(args))
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
