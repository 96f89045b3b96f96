"""kill -9 under load: acknowledged votes survive, retried votes count once."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import Client, Dashboard, login, setup
from .procserver import ServerProcess, votes_table

THREADS = 8
ACKED_BEFORE_KILL = 200


@pytest.mark.host
def test_kill9_keeps_acked_votes_and_retries_count_once(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path)
    srv.start()
    try:
        dash = Dashboard(srv.url)
        pk = setup(dash, "c-stars", "range", start=1, end=5)
        lock = threading.Lock()
        acked: dict[str, tuple[str, int]] = {}  # msgId -> (voter, value)
        unacked: dict[str, tuple[str, int]] = {}
        stop = threading.Event()

        def run(t: int) -> None:
            c = Client(srv.url)
            token = login(c, pk)
            k = 0
            try:
                while not stop.is_set() and k < 10_000:
                    msg_id, voter, value = f"m{t}-{k}", f"v{t}-{k}", k % 5 + 1
                    msg = {"id": "c-stars", "voteTo": "crash", "userId": voter, "value": value}
                    try:
                        ack = c.call("vote", {**msg, "token": token, "msgId": msg_id}, timeout=5)
                    except Exception:
                        with lock:
                            unacked[msg_id] = (voter, value)
                        return
                    with lock:
                        (acked if ack.get("ok") else unacked)[msg_id] = (voter, value)
                    k += 1
            finally:
                with contextlib.suppress(Exception):
                    c.close()

        threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(THREADS)]
        for th in threads:
            th.start()
        deadline = time.monotonic() + 120
        while len(acked) < ACKED_BEFORE_KILL and time.monotonic() < deadline:
            time.sleep(0.01)
        srv.kill9()  # mid-load: every thread has a vote in flight or about to be sent
        stop.set()
        for th in threads:
            th.join(timeout=30)
        assert len(acked) >= ACKED_BEFORE_KILL

        srv.start()  # same data dir, same port
        c = Client(srv.url)
        try:
            token = login(c, pk)
            base = {"id": "c-stars", "voteTo": "crash", "token": token}
            for voter, value in acked.values():  # every acknowledged vote is there
                st = c.call("get-votes", {**base, "userId": voter})
                assert st["ok"] and st["voted"] and st["voteValue"] == value, (voter, st)
            for msg_id, (voter, value) in unacked.items():  # retry with the same msgId
                ack = c.call("vote", {**base, "userId": voter, "value": value, "msgId": msg_id})
                assert ack["ok"], ack
            for msg_id, (voter, value) in list(acked.items())[:20]:  # a duplicate: replayed
                ack = c.call("vote", {**base, "userId": voter, "value": value, "msgId": msg_id})
                assert ack["ok"] and ack["replayed"], ack
            everything = {**acked, **unacked}
            final = c.call("get-votes", base)
            assert final["total"]["voters"] == len(everything)
            assert final["total"]["sum"] == sum(v for _, v in everything.values())
        finally:
            c.close()
        srv.stop()
        # the live tally (incremental) equals the stored per-voter values: no double count
        rows = [r for r in votes_table(srv.export()) if r["vote_to"] == "crash"]
        stored: dict[str, Any] = {r["voter"]: r["value"] for r in rows}
        assert stored == {f"u:{voter}": value for voter, value in everything.values()}
    finally:
        srv.stop()
