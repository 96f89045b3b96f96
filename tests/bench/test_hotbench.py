"""The hot-item benchmark's own parts: the watchers' frame reader and the scheduler figures.
Marked host: the benchmarks are not in the images."""

from __future__ import annotations

import json
import os
import time

import pytest

pytestmark = pytest.mark.host


def frame(text: str) -> bytes:
    from clickvote.wsfast import text_frame

    return text_frame(text)


def update(count: int, pad: str = "") -> str:
    total = {"initial": 0, "count": count, "avg": 0, "pad": pad}
    return "42" + json.dumps(
        ["get-votes-likes-hot", {"total": total, "poster": {"value": 1}}], separators=(",", ":")
    )


def test_frames_takes_whole_frames_and_keeps_a_partial_one() -> None:
    from benchmarks.hotbench import frames

    long = update(7, "x" * 300)  # a 16-bit length
    data = frame("2") + frame(long) + frame(update(8))
    buf = bytearray(data[:-5])
    assert frames(buf) == [b"2", long.encode()]
    buf += data[-5:]
    assert frames(buf) == [update(8).encode()]
    assert buf == bytearray()


def test_count_of_reads_an_updates_count_and_nothing_else() -> None:
    from benchmarks.hotbench import count_of

    assert count_of(update(1234).encode()) == 1234
    state = "42" + json.dumps(["get-votes-likes-hot", {"total": {"count": 3}}])
    assert count_of(state.encode()) == -1  # the state a subscription gets: not an update
    other = update(5).replace("likes-hot", "likes-cold")
    assert count_of(other.encode()) == -1
    assert count_of(b"2") == -1


def test_sched_seconds_counts_cpu_time() -> None:
    from benchmarks.procstat import sched_seconds

    run0, wait0 = sched_seconds(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # bounded busy loop
        pass
    run1, wait1 = sched_seconds(os.getpid())
    assert run1 - run0 >= 0.25
    assert wait1 >= wait0 >= 0


def test_hot_rows_show_the_ack_latency_and_the_cpu_wait() -> None:
    from benchmarks.run import hot_rows

    fig = {
        "watchers": 1000, "votes_per_s": 100.0, "frames_per_s": 9000.0, "lag_p50": 300.0,
        "lag_p99": 900.0, "lag_acked_p99": 600.0, "lag_read_p99": 1200.0, "unseen": 0.0,
        "unstamped": 0.02,
        "ack_p50": 200.0, "ack_p99": 800.0,
        "cpu_cores": 0.3, "cpu_wait_cores": 0.7, "watchers_cpu_cores": 0.2,
        "load_average": 9.5,
    }  # fmt: skip
    rows = {r.figure: r for r in hot_rows({"single": fig, "coalesced": fig, "uncoalesced": fig})}
    assert any("ack p99" in n and r.value == 800.0 for n, r in rows.items())
    assert any("waiting for a CPU" in n and r.value == 70.0 for n, r in rows.items())
    assert any("load average" in n and r.value == 9.5 for n, r in rows.items())
    assert any("lower bound" in n and r.value == 600.0 for n, r in rows.items())
    assert any("processes read it" in n and r.value == 1200.0 for n, r in rows.items())
    assert any("arrival stamp" in n and r.value == 2.0 for n, r in rows.items())


def test_a_frame_is_stamped_when_it_arrives_not_when_it_is_read() -> None:
    """The lag is read off the kernel's receive stamp: a frame read 0.3 s after it arrived
    still shows its arrival time (the watchers share the cores and read late)."""
    import socket

    from benchmarks.hotbench import recv_stamped, stamp_arrivals

    server = socket.create_server(("127.0.0.1", 0))
    with server, socket.create_connection(server.getsockname()) as watcher:
        sender, _ = server.accept()
        with sender:
            stamp_arrivals(watcher)
            # The kernel turns receive stamping on in a deferred work item (net_enable_timestamp),
            # so on a busy machine the first segments can arrive unstamped: wait until one is.
            deadline = time.monotonic() + 5
            while True:
                sender.sendall(b"w")
                warm, stamped = recv_stamped(watcher)
                assert warm == b"w"
                if stamped is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            sent = time.time()
            sender.sendall(frame(update(25)))
            time.sleep(0.3)
            data, arrived = recv_stamped(watcher)
            read = time.time()
    assert data == frame(update(25))
    assert arrived is not None
    assert sent - 0.05 <= arrived <= sent + 0.1 < read - 0.15


def test_unstamped_reads_say_so() -> None:
    import socket

    from benchmarks.hotbench import recv_stamped

    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"x")
        assert recv_stamped(b) == (b"x", None)


def test_a_small_run_shows_every_probed_vote_to_every_watcher_at_its_kernel_stamp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole bench on a small scale (10 watchers, bounded: about 4 s of votes): every
    probed vote reaches every watcher, the arrival stamps are the kernel's, and the lower
    bound on the lag is below the upper one."""
    from benchmarks import hotbench

    monkeypatch.setattr(hotbench, "WARM_UP", 0.5)
    fig = hotbench.one_run(0.1, 10)
    assert fig["watchers"] == 10
    assert fig["votes_per_s"] > 0 and fig["frames_per_s"] > 0
    assert fig["unseen"] == 0
    assert fig["unstamped"] < 0.5
    assert 0 <= fig["lag_acked_p99"] <= fig["lag_p99"]
