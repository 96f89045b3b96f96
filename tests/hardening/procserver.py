"""``python -m clickvote serve`` as a subprocess on 127.0.0.1 (its own GIL, killable)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from services import free_port, load_env, stop_process, wait_healthy


class ServerProcess:
    """`env`: more CLICKVOTE_* settings; `nofile`: the (soft, hard) open-files limit it starts
    with; `log`: a file for its stderr."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
        nofile: tuple[int, int] | None = None,
        log: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # one process unless `env` says otherwise: what these tests measure (memory, limits)
        # is that process's (tests/scale/workerserver.py runs several)
        self.env = {"CLICKVOTE_WORKERS": "1", **(env or {})}
        self.nofile, self.log = nofile, log
        self.proc: subprocess.Popen[bytes] | None = None

    def _limits(self) -> None:  # in the child, before exec
        if self.nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, self.nofile)

    def start(self, timeout: float = 60) -> None:
        cmd = [sys.executable, "-m", "clickvote", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        stderr = open(self.log, "ab") if self.log else None  # noqa: SIM115 - child's stderr
        try:
            self.proc = subprocess.Popen(
                cmd,
                env={**os.environ, **load_env(), **self.env},
                stderr=stderr,
                preexec_fn=self._limits if self.nofile else None,
                start_new_session=True,  # its own process group: its workers too (kill9)
            )
        finally:
            if stderr is not None:
                stderr.close()
        proc = self.proc
        wait_healthy(self.url, timeout, alive=lambda: proc.poll() is None)

    def memory(self) -> tuple[int, int]:
        """(resident, peak resident) in KiB, from /proc."""
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])

    def fd_limit(self) -> int:
        """The soft open-files limit the process runs with now."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
        raise AssertionError("no open-files limit in /proc")

    def kill9(self) -> None:
        """SIGKILL to the server and its worker processes at once (a power cut)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=15)

    def export(self) -> dict[str, Any]:
        cmd = [sys.executable, "-m", "clickvote", "export", "--data-dir", str(self.data_dir)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
        return dict(json.loads(out.stdout))


def votes_table(export: dict[str, Any]) -> list[dict[str, Any]]:
    t = export["tables"]["votes"]
    return [dict(zip(t["columns"], row, strict=True)) for row in t["rows"]]
