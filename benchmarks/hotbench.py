"""Hot item: 1,000 sockets watch one item while voters push votes on it as fast as the server
acknowledges them, against the same server with broadcast windows of 100 ms and 0, and with
a single watcher (the vote rate the others are compared with).

Each vote is a new voter's like, so the item's count numbers the votes: a watcher's frame with
count c shows every vote up to c. Update lag for vote k: to the first frame at a watcher whose
count is >= k, as it arrived in the watcher's socket (the kernel's receive time,
SO_TIMESTAMPNS, of the last segment a read returned), measured for every PROBE-th vote at every
watcher. From the vote's sending, an upper bound on the lag from its commit (the figure the
goal is judged on), and from its acknowledgement at the voter, a lower bound; beside them the
lag until the watcher's process read the frame, which adds the co-located watchers' own wait
for a CPU (browsers on other machines don't share the server's cores). Frames/s: frames that
arrived at the watchers over the load's seconds. Server CPU: the server process's user + system
time over the load, in cores (1.0 = one core busy); beside it the seconds it was runnable but
waiting for a CPU (schedstat), and the same for the watchers' and the voters' processes.
The watchers run at the lowest priority (they stand for browsers on other machines) and read
their frames without decoding them (`count_of`). Bounded: DURATION seconds of votes, then at
most SETTLE seconds for the last frames; all on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.procstat import children, sched_seconds
from benchmarks.socketbench import clickvote_server, pct, setup_env, watcher_processes
from clickvote.client import SioClient

GROUP, ITEM = "likes", "hot"
PROBE = 25  # every 25th vote's lag is measured at every watcher
DURATION = 4.0  # seconds of votes per run
SETTLE = 5.0  # seconds the watchers get, after the votes, for the last frames
# sockets voting, votes each keeps in flight: few sockets, as each voter's socket joins the
# item's room and gets its updates too (the load generator parses those as well)
VOTERS, IN_FLIGHT = 10, 10
WARM_UP = 1.0  # seconds of votes before the measured ones (a fresh server's first votes)
NICE = 19  # the watchers' processes' niceness
WATCH_PROCS = 2  # processes for the watchers: fewer runnable clients to share the cores with
BIN = 0.1  # seconds: frames are counted per bin of arrival time
UPDATE = f'42["get-votes-{GROUP}-{ITEM}",'.encode()
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value on x86 and arm
STAMP_SPACE = socket.CMSG_SPACE(16)  # one struct timespec


def stamp_arrivals(sock: socket.socket) -> None:
    """Have the kernel stamp each segment's arrival (CLOCK_REALTIME, i.e. time.time())."""
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)


def recv_stamped(sock: socket.socket, size: int = 65536) -> tuple[bytes, float | None]:
    """One read: its bytes and the arrival time of the last segment among them, or None
    where the kernel gave none (``stamp_arrivals`` not set)."""
    data, ancillary, _flags, _addr = sock.recvmsg(size, STAMP_SPACE)
    for level, kind, raw in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
            sec, nsec = struct.unpack("qq", raw[:16])
            return data, sec + nsec / 1e9
    return data, None


async def _connect_all(url: str, n: int, on_event: Any = None) -> list[SioClient]:
    sem = asyncio.Semaphore(50)

    async def one(i: int) -> SioClient:
        async with sem:
            c = SioClient(url, on_event(i) if on_event else None)
            await c.connect()
            return c

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def frames(buf: bytearray) -> list[bytes]:
    """The payloads of the whole server frames at the head of `buf` (taken out of it): a
    server's frames are unmasked (RFC 6455 5.1), and ClickVote sends each message in one."""
    out, pos, end = [], 0, len(buf)
    while end - pos >= 2:
        n, i = buf[pos + 1] & 0x7F, pos + 2
        if n >= 126:
            width = 2 if n == 126 else 8
            if end - i < width:
                break
            n, i = int.from_bytes(buf[i : i + width], "big"), i + width
        if end - i < n:
            break
        out.append(bytes(buf[i : i + n]))
        pos = i + n
    del buf[:pos]
    return out


def count_of(payload: bytes) -> int:
    """The item's count in a watcher's update (42["get-votes-..",{"total":{..,"count":N,..},
    "poster":..}]), -1 for any other frame; read without decoding the JSON."""
    if not payload.startswith(UPDATE) or b'"poster"' not in payload:
        return -1
    i = payload.find(b'"count":') + 8
    j = i
    while payload[j : j + 1].isdigit():
        j += 1
    return int(payload[i:j]) if j > i and i >= 8 else -1


async def watch(url: str, token: str, n: int, out: Path) -> None:
    """`n` watchers: print "ready", record until stdin closes, write the JSON to `out`.
    Once subscribed, each socket is read here with recvmsg (`take_over`, `recv_stamped`) and
    its frames parsed without decoding (`frames`, `count_of`), not by SioClient: the watchers
    share the machine with the server, and a frame's WebSocket and JSON decoding in Python
    would cost them several times what the server spends sending it."""
    seen = [0] * n  # each watcher's highest count
    bins: dict[int, int] = {}  # frames at all watchers per BIN seconds of arrival time
    arrivals: list[dict[int, float]] = [{} for _ in range(n)]  # probe -> first arrival
    reads: list[dict[int, float]] = [{} for _ in range(n)]  # probe -> read by this process
    unstamped = [0, 0]  # frames that came without a kernel stamp (their read time used), all
    loop = asyncio.get_running_loop()

    clients = await _connect_all(url, n)
    for c in clients:
        ack = await c.call("get-votes", {"id": GROUP, "voteTo": ITEM, "token": token})
        assert ack.get("ok"), ack
    await asyncio.sleep(0.5)  # the state each subscription sends after its ack is read
    socks = [await take_over(c) for c in clients]

    def on_readable(i: int, c: SioClient, sock: socket.socket, buf: bytearray) -> None:
        while True:
            try:
                data, arrived = recv_stamped(sock)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(sock.fileno())
                return
            read_at = time.time()
            stamped = arrived is not None
            arrived = arrived or read_at
            buf += data
            for payload in frames(buf):
                unstamped[0] += not stamped
                unstamped[1] += 1
                if payload == b"2":  # engine.io ping
                    c._send("3")
                count = count_of(payload)
                if count < 0:
                    continue
                b = int(arrived / BIN)
                bins[b] = bins.get(b, 0) + 1
                probe = (seen[i] // PROBE + 1) * PROBE
                while probe <= count:
                    arrivals[i][probe], reads[i][probe] = arrived, read_at
                    probe += PROBE
                seen[i] = max(seen[i], count)

    for i, (c, (sock, leftover)) in enumerate(zip(clients, socks, strict=True)):
        loop.add_reader(sock.fileno(), on_readable, i, c, sock, bytearray(leftover))
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    for sock, _ in socks:
        loop.remove_reader(sock.fileno())
        sock.close()
    for c in clients:
        await c.close()
    out.write_text(
        json.dumps({"bins": bins, "arrivals": arrivals, "reads": reads, "unstamped": unstamped})
    )


async def take_over(c: SioClient) -> tuple[socket.socket, bytes]:
    """Stop SioClient reading `c`'s socket; return the socket (a duplicate of its descriptor,
    non-blocking, arrivals stamped) and any bytes its stream had buffered unread."""
    assert c.task is not None and c.reader is not None and c.writer is not None
    c.task.cancel()
    await asyncio.gather(c.task, return_exceptions=True)
    transport = c.writer.transport
    assert isinstance(transport, asyncio.Transport)
    transport.pause_reading()
    leftover = b""
    while True:
        try:
            leftover += await asyncio.wait_for(c.reader.read(65536), 0.01)
        except TimeoutError:
            break
    fd = transport.get_extra_info("socket").fileno()
    sock = socket.socket(fileno=os.dup(fd))
    sock.setblocking(False)
    stamp_arrivals(sock)
    return sock, leftover


async def vote(
    url: str, token: str, tag: str, duration: float = DURATION, limit: int = 0
) -> tuple[dict[int, tuple[float, float]], int, float, float, list[float]]:
    """Votes for `duration` seconds (`limit` > 0: at most `limit` votes); returns (probe ->
    (send time, acknowledgement time), acked, start, seconds, each acked vote's ms from its
    sending to its acknowledgement). Times are time.time(), the clock of the watchers' stamps."""
    clients = await _connect_all(url, VOTERS)
    sent: dict[int, tuple[float, float]] = {}
    acks: list[float] = []
    acked, seq = 0, 0
    start, began = time.time(), time.monotonic()
    end = began + duration

    async def loop(c: SioClient) -> None:
        nonlocal acked, seq
        while time.monotonic() < end and not (limit and seq >= limit):
            seq += 1
            msg = {"id": GROUP, "voteTo": ITEM, "userId": f"{tag}{seq}", "value": 1}
            t0 = time.time()
            ack = await c.call("vote", {**msg, "token": token}, timeout=30)
            if ack.get("ok"):
                t1 = time.time()
                acked += 1
                acks.append((t1 - t0) * 1000)
                count = int(ack["total"]["count"])
                if count % PROBE == 0:
                    sent[count] = (t0, t1)

    await asyncio.gather(*(loop(c) for c in clients for _ in range(IN_FLIGHT)))
    seconds = time.monotonic() - began
    for c in clients:
        await c.close()
    return sent, acked, start, seconds, acks


def _sched(*groups: list[int]) -> list[tuple[float, float]]:
    """Per group of processes: (CPU seconds, seconds waiting for a CPU), summed."""
    out = []
    for pids in groups:
        got = [sched_seconds(p) for p in pids]
        out.append((sum(g[0] for g in got), sum(g[1] for g in got)))
    return out


def one_run(window: float, watchers: int) -> dict[str, Any]:
    env = {"CLICKVOTE_BROADCAST_WINDOW": str(window)}
    with clickvote_server(env) as (url, pid):
        token = setup_env(url)
        procs = min(WATCH_PROCS, watchers)
        with watcher_processes("benchmarks.hotbench", url, token, watchers, procs) as results:
            asyncio.run(vote(url, token, "warm-", WARM_UP))
            watchers_pids = [p for p in children(os.getpid()) if p != pid]
            before = _sched([pid], watchers_pids, [os.getpid()])
            sent, acked, start, seconds, acks = asyncio.run(vote(url, token, "v-"))
            after = _sched([pid], watchers_pids, [os.getpid()])
            (cpu, wait), (w_cpu, w_wait), (v_cpu, v_wait) = (
                ((a[0] - b[0]) / seconds, (a[1] - b[1]) / seconds)
                for a, b in zip(after, before, strict=True)
            )
            time.sleep(min(SETTLE, 1.0 + 4 * window))
            frames, missing, unstamped, read_frames = 0, 0, 0, 0
            lags: list[float] = []  # from sending: an upper bound on the lag from the commit
            lags_acked: list[float] = []  # from the acknowledgement: a lower bound
            lags_read: list[float] = []  # from sending to the watcher's process reading it
            for got in results():
                first, last = int(start / BIN), int((start + seconds) / BIN)
                frames += sum(v for b, v in got["bins"].items() if first <= int(b) < last)
                unstamped, read_frames = (
                    unstamped + got["unstamped"][0],
                    read_frames + got["unstamped"][1],
                )
                for arrived, read in zip(got["arrivals"], got["reads"], strict=True):
                    for probe, (t0, t1) in sent.items():
                        t = arrived.get(str(probe))
                        if t is None:
                            missing += 1
                            continue
                        lags.append((t - t0) * 1000)
                        lags_acked.append((t - t1) * 1000)
                        lags_read.append((read[str(probe)] - t0) * 1000)
    return {
        "window_ms": window * 1000,
        "watchers": watchers,
        "votes_per_s": acked / seconds,
        "frames_per_s": frames / ((int((start + seconds) / BIN) - int(start / BIN)) * BIN),
        "lag_p50": pct(lags, 50),
        "lag_p99": pct(lags, 99),
        "lag_acked_p99": pct(lags_acked, 99),
        "lag_read_p99": pct(lags_read, 99),
        "unseen": missing / max(1, missing + len(lags)),  # share of (probe, watcher) never shown
        # share of the frames read that the kernel gave no arrival stamp (their read time used)
        "unstamped": unstamped / max(1, read_frames),
        "ack_p50": pct(acks, 50),
        "ack_p99": pct(acks, 99),
        "cpu_cores": cpu,
        "cpu_wait_cores": wait,  # runnable, waiting for a CPU the machine's other load held
        "watchers_cpu_cores": w_cpu,
        "watchers_wait_cores": w_wait,
        "voters_cpu_cores": v_cpu,
        "voters_wait_cores": v_wait,
        "load_average": os.getloadavg()[0],
    }


def hot_item(watchers: int = 1000) -> dict[str, Any]:
    """Single-watcher rate, then 1,000 watchers with the window 100 ms and with 0."""
    return {
        "single": one_run(0.1, 1),
        "coalesced": one_run(0.1, watchers),
        "uncoalesced": one_run(0.0, watchers),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["watch", "run"])
    p.add_argument("--url", default="")
    p.add_argument("--token", default="")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--out", default="")
    args = p.parse_args()
    if args.mode == "watch":
        # Lowest priority: the watchers stand for browsers on other machines. At the same
        # priority as the server, their processes (always runnable with 1,000 sockets' frames
        # to read) took most of its share of the 2 cores (benchmarks/RESULTS.md, hot item).
        os.nice(NICE)
        asyncio.run(watch(args.url, args.token, args.clients, Path(args.out)))
    else:
        print(json.dumps(hot_item(args.clients), indent=1))


if __name__ == "__main__":
    main()
