"""`clickvote serve --workers N` without starting processes: how many, the settings each worker
is given, and which worker a request's sid names (the processes themselves:
tests/scale/test_workers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clickvote.cli import build_parser, settings_from_args
from clickvote.config import Settings
from clickvote.connguard import SharedCount
from clickvote.handover import owner
from clickvote.workers import settings_env, worker_count


def test_the_default_is_one_worker_per_usable_core() -> None:
    assert worker_count(0) == len(os.sched_getaffinity(0))
    assert worker_count(3) == 3
    with pytest.raises(ValueError, match="--workers -1"):
        worker_count(-1)


def test_the_flag_and_the_environment_set_it() -> None:
    args = build_parser().parse_args(["serve", "--workers", "2"])
    assert settings_from_args(args).workers == 2
    assert Settings.from_env({"CLICKVOTE_WORKERS": "4"}).workers == 4
    assert Settings.from_env({}).workers == 0  # one per core


def test_workers_get_exactly_the_settings_of_the_serve_command() -> None:
    settings = Settings.from_env(
        {}, port=9123, secure_cookies=True, rate_ip_burst=7.5, identities="signed", workers=3
    )
    assert Settings.from_env(settings_env(settings)) == settings


@pytest.mark.parametrize(
    ("request_line", "worker"),
    [
        (b"GET /socket.io/?EIO=4&transport=polling&sid=3.AbC-_d HTTP/1.1\r\n", 3),
        (b"POST /socket.io/?EIO=4&sid=0.x&transport=polling HTTP/1.1\r\nHost: h\r\n", 0),
        (b"GET /socket.io/?EIO=4&transport=websocket&sid=12.x HTTP/1.1\r\n", 12),
        (b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n", None),  # a handshake
        (b"GET /socket.io/?EIO=4&transport=polling&sid=AbCd HTTP/1.1\r\n", None),  # one worker
        (b"GET /socket.io/?sid=%C2%B2.x HTTP/1.1\r\n", None),  # a digit, not an ASCII one
        (b"GET /api/votes?sid=1.x HTTP/1.1\r\n", None),  # not Engine.IO
        (b"GET /socket.io/?EIO=4&transport=polling&sid=1.x", None),  # line not complete yet
    ],
)
def test_the_worker_a_request_belongs_to(request_line: bytes, worker: int | None) -> None:
    assert owner(request_line) == worker


def test_the_connection_count_is_the_sum_of_the_workers_slots(tmp_path: Path) -> None:
    path = str(tmp_path / "connections")
    SharedCount.create(path, 3)
    one, two = SharedCount(path, 0, 3), SharedCount(path, 2, 3)
    assert one.update(4) == 4
    assert two.update(5) == 9
    assert one.update(1) == 6
    SharedCount(path, 2, 3).close()  # worker 2 died: its slot starts again from 0
    assert one.update(1) == 1
    one.close()
    two.close()
