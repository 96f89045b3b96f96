"""A container started for verification: run, restart, inspect, remove. Bounded waits."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ci import project, shell
from ci.release import ReleaseError

TIMEOUT = 300.0


def image_config(ref: str) -> dict[str, Any]:
    """``docker image inspect`` of a pulled image: Entrypoint, Cmd, Volumes, User..."""
    out = shell.text(["docker", "image", "inspect", "--format", "{{json .Config}}", ref])
    return json.loads(out) or {}


def pull(ref: str, platform: str) -> None:
    shell.change(
        ["docker", "pull", "--quiet", "--platform", platform, ref], dry=False, timeout=TIMEOUT * 3
    )


def command_for(config: dict[str, Any], program: str, args: Sequence[str]) -> list[str]:
    """Arguments that run ``program args`` whatever the image's entrypoint is."""
    entrypoint = config.get("Entrypoint") or []
    if entrypoint and os.path.basename(entrypoint[-1]) == program:
        return list(args)
    return [program, *args]


@dataclass
class Container:
    image: str
    platform: str
    name: str = field(default_factory=lambda: f"clickvote-verify-{secrets.token_hex(4)}")
    volumes: dict[str, str] = field(default_factory=dict)  # volume name -> mount path
    env: dict[str, str] = field(default_factory=dict)

    def start(self, args: Sequence[str]) -> None:
        cmd = [
            "docker",
            "run",
            "-d",
            "--name",
            self.name,
            *project.platform_args(self.platform),
            "--network",
            "host",
        ]
        for vol, path in self.volumes.items():
            cmd += ["-v", f"{vol}:{path}"]
        for k, v in self.env.items():
            cmd += ["-e", f"{k}={v}"]
        shell.change([*cmd, self.image, *args], dry=False, timeout=TIMEOUT)

    def restart(self) -> None:
        shell.change(["docker", "restart", "-t", "20", self.name], dry=False, timeout=TIMEOUT)

    def running(self) -> bool:
        proc = shell.run(
            ["docker", "inspect", "--format", "{{.State.Running}}", self.name], check=False
        )
        return proc.stdout.strip() == b"true"

    def exec(self, *args: str, timeout: float = 120.0) -> str:
        return shell.text(["docker", "exec", self.name, *args], timeout=timeout)

    def process_exe(self) -> str | None:
        """What the host kernel runs for the container's main process (a QEMU binary if
        binfmt_misc emulates it); None when not visible (remote engine, permissions)."""
        proc = shell.run(
            ["docker", "inspect", "--format", "{{.State.Pid}}", self.name], check=False
        )
        try:
            return os.readlink(f"/proc/{int(proc.stdout.strip())}/exe")
        except (OSError, ValueError):
            return None

    def logs(self) -> str:
        proc = shell.run(["docker", "logs", "--tail", "40", self.name], check=False)
        return (proc.stdout + proc.stderr).decode(errors="replace")

    def remove(self) -> None:
        shell.run(["docker", "rm", "-f", "-v", self.name], check=False, timeout=TIMEOUT)
        for vol in self.volumes:
            shell.run(["docker", "volume", "rm", "-f", vol], check=False, timeout=TIMEOUT)


def create_volume() -> str:
    name = f"clickvote-verify-{secrets.token_hex(4)}"
    shell.run(["docker", "volume", "create", name])
    return name


def probe(c: Container) -> tuple[str, str]:
    """``uname -m`` and /proc/cpuinfo as seen inside the running container."""
    script = "uname -m; echo ---; cat /proc/cpuinfo"
    try:
        out = c.exec("sh", "-c", script)
    except ReleaseError:
        out = c.exec(
            "python3",
            "-c",
            "import platform;print(platform.machine());print('---');"
            "print(open('/proc/cpuinfo').read())",
        )
    machine, _, cpuinfo = out.partition("---")
    return machine.strip(), cpuinfo
