"""A local image registry: Debian's ``docker-registry`` as a plain background process.

State (config, data, pid file, log) lives in ``release.state_dir`` (default
``var/registry``). Every action is idempotent.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ci import shell
from ci.release import ReleaseError
from ci.release.config import ReleaseConfig

PACKAGE = "docker-registry"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yml"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def pid(self) -> Path:
        return self.root / "registry.pid"

    @property
    def log(self) -> Path:
        return self.root / "registry.log"


def config_text(addr: str, data: Path) -> str:
    return (
        "# Written by `inv registry start`; regenerated on every start.\n"
        "version: 0.1\n"
        "log:\n  level: info\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {data}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: {addr}\n"
        "  headers:\n    X-Content-Type-Options: [nosniff]\n"
    )


def _binary() -> str | None:
    return shutil.which(PACKAGE) or next(
        (p for p in ("/usr/bin/docker-registry",) if os.access(p, os.X_OK)), None
    )


def _pid(paths: Paths) -> int | None:
    """The pid in the pid file if that process is still our registry."""
    try:
        pid = int(paths.pid.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if PACKAGE.encode() in cmdline else None


def answers(cfg: ReleaseConfig) -> bool:
    """True when something speaking the registry API answers at the configured address."""
    try:
        with urllib.request.urlopen(f"http://{cfg.registry}/v2/", timeout=2) as resp:
            return resp.headers.get("Docker-Distribution-Api-Version") is not None
    except urllib.error.HTTPError as e:
        return e.headers.get("Docker-Distribution-Api-Version") is not None
    except (urllib.error.URLError, OSError):
        return False


def _require_local(cfg: ReleaseConfig) -> None:
    if not cfg.is_local:
        raise ReleaseError(
            f"the registry is {cfg.registry}, not a loopback address: "
            "`inv registry` only manages a local one"
        )


def install(dry: bool) -> str:
    binary = _binary()
    if binary:
        return binary
    if os.geteuid() != 0 and not dry:
        raise ReleaseError(
            f"{PACKAGE} is not installed and installing it needs root: "
            f"sudo apt-get install {PACKAGE}"
        )
    shell.change(
        ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", PACKAGE], dry=dry, timeout=900
    )
    binary = _binary()
    if not binary and not dry:
        raise ReleaseError(f"{PACKAGE} is still missing after apt-get install")
    return binary or f"/usr/bin/{PACKAGE}"


def status(cfg: ReleaseConfig) -> str:
    paths = Paths(cfg.state_dir)
    pid = _pid(paths)
    if pid and answers(cfg):
        return f"running (pid {pid}) at {cfg.registry}, data in {paths.data}"
    if pid:
        return f"process {pid} exists but {cfg.registry} does not answer; log: {paths.log}"
    if answers(cfg):
        return f"a registry answers at {cfg.registry} but was not started by `inv registry`"
    return "stopped"


def start(cfg: ReleaseConfig, *, dry: bool = False) -> str:
    _require_local(cfg)
    paths = Paths(cfg.state_dir)
    if _pid(paths) and answers(cfg):
        return status(cfg)
    if answers(cfg):
        return status(cfg) + "; using it"
    binary = install(dry)
    if dry:
        shell.echo(f"[dry] write {paths.config}; start {binary} serve {paths.config}")
        return "would start"
    paths.data.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(config_text(cfg.registry, paths.data))
    with paths.log.open("ab") as log:
        proc = subprocess.Popen(
            [binary, "serve", str(paths.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    paths.pid.write_text(f"{proc.pid}\n")
    _wait_ready(cfg, proc, paths)
    return status(cfg)


def _wait_ready(cfg: ReleaseConfig, proc: subprocess.Popen[bytes], paths: Paths) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if answers(cfg):
            return
        if proc.poll() is not None:
            paths.pid.unlink(missing_ok=True)
            tail = paths.log.read_text(errors="replace")[-800:]
            raise ReleaseError(f"docker-registry exited with {proc.returncode}:\n{tail}")
        time.sleep(0.2)
    raise ReleaseError(
        f"docker-registry did not answer at {cfg.registry} within "
        f"{START_TIMEOUT:.0f}s; log: {paths.log}"
    )


def stop(cfg: ReleaseConfig, *, dry: bool = False) -> str:
    paths = Paths(cfg.state_dir)
    pid = _pid(paths)
    if pid is None:
        paths.pid.unlink(missing_ok=True)
        return "not running" + (" (something else answers there)" if answers(cfg) else "")
    if dry:
        return f"would stop pid {pid}"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        _reap(pid)
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists() and _pid(paths) == pid:
        os.kill(pid, signal.SIGKILL)
    paths.pid.unlink(missing_ok=True)
    return f"stopped (pid {pid})"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
