"""``python -m clickvote serve`` as a subprocess on 127.0.0.1 (its own GIL, killable)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from .conftest import free_port

ENV = {
    "CLICKVOTE_RATE_VOTER_BURST": "1000000",
    "CLICKVOTE_RATE_VOTER_PER_SEC": "1000000",
    "CLICKVOTE_RATE_IP_BURST": "1000000",
    "CLICKVOTE_RATE_IP_PER_SEC": "1000000",
    "CLICKVOTE_BCRYPT_ROUNDS": "4",
    "CLICKVOTE_LOG_LEVEL": "warning",
}


class ServerProcess:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        cmd = [sys.executable, "-m", "clickvote", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        self.proc = subprocess.Popen(cmd, env={**os.environ, **ENV})
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.1)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)

    def export(self) -> dict[str, Any]:
        cmd = [sys.executable, "-m", "clickvote", "export", "--data-dir", str(self.data_dir)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
        return dict(json.loads(out.stdout))


def votes_table(export: dict[str, Any]) -> list[dict[str, Any]]:
    t = export["tables"]["votes"]
    return [dict(zip(t["columns"], row, strict=True)) for row in t["rows"]]
