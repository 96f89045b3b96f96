"""``python -m clickvote serve`` as a subprocess on 127.0.0.1 (its own GIL, killable)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from services import free_port, load_env, wait_healthy


class ServerProcess:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        cmd = [sys.executable, "-m", "clickvote", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        self.proc = subprocess.Popen(cmd, env={**os.environ, **load_env()})
        proc = self.proc
        wait_healthy(self.url, timeout, alive=lambda: proc.poll() is None)

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
