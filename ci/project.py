"""Facts about the project that several tools need, read from their single source.

The platform list, the image names and the Python version are variables of
``docker/docker-bake.hcl``, read as ``docker buildx bake --print app test base`` resolves
them (with any variables set in the environment, as bake itself takes them). Where no
buildx is installed (a fresh host, the test image) the same answer for the defaults is read
from ``docker/docker-bake.print.json``, which ``python3 -m ci.project`` writes again after a
change to the bake file. The facts about each platform (machine, Debian architecture, QEMU
handler, wheel tags...) are the rows of ``docker/platforms.toml``.
"""

from __future__ import annotations

import json
import os
import platform as _host
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BAKE_FILE = ROOT / "docker" / "docker-bake.hcl"
BAKE_PRINT = ROOT / "docker" / "docker-bake.print.json"  # --print of the defaults
PLATFORM_TABLE = ROOT / "docker" / "platforms.toml"
BAKE_TARGETS = ("app", "test", "base")


@dataclass(frozen=True)
class Platform:
    """One row of docker/platforms.toml (its header says what each fact means)."""

    name: str  # Docker's: linux/arm/v7
    machine: str
    also: tuple[str, ...]
    family: str
    debian: str
    qemu: str
    native_on: tuple[str, ...]
    maybe_native_on: tuple[str, ...]
    wheel_tags: tuple[str, ...]
    emulator_env: Mapping[str, str]

    @property
    def machines(self) -> frozenset[str]:
        """Every `uname -m` its containers may report."""
        return frozenset({self.machine, *self.also})


def _row(name: str, row: dict[str, Any]) -> Platform:
    def strings(key: str) -> tuple[str, ...]:
        return tuple(str(v) for v in row.get(key, ()))

    return Platform(
        name=name,
        machine=str(row["machine"]),
        also=strings("also"),
        family=str(row["family"]),
        debian=str(row["debian"]),
        qemu=str(row["qemu"]),
        native_on=strings("native_on"),
        maybe_native_on=strings("maybe_native_on"),
        wheel_tags=strings("wheel_tags"),
        emulator_env={str(k): str(v) for k, v in row.get("emulator_env", {}).items()},
    )


@cache
def table() -> dict[str, Platform]:
    """Every platform the project knows, built or not, in the table's order."""
    with PLATFORM_TABLE.open("rb") as f:
        rows = tomllib.load(f)["platforms"]
    return {name: _row(name, row) for name, row in rows.items()}


MACHINES = {p.name: p.machine for p in table().values()}
DEBIAN_ARCH = {p.name: p.debian for p in table().values()}
# Python code that sets m to the machine as MACHINES names it (a 32-bit x86 Python on a 64-bit
# kernel is i686, as pip's wheel tags have it).
MACHINE_PROBE = (
    "import platform, sys; m = platform.machine(); "
    "m = 'i686' if m in ('x86_64', 'i386', 'i586') and sys.maxsize < 2**32 else m"
)


def bake_print_command(bake_file: Path = BAKE_FILE) -> list[str]:
    return ["docker", "buildx", "bake", "-f", str(bake_file), "--print", *BAKE_TARGETS]


def _has_buildx() -> bool:
    """Whether docker has its buildx plugin (a docker client without one, as in the test
    image, answers `docker buildx bake -f ...` with its own usage)."""
    try:
        cmd = ["docker", "buildx", "version"]
        return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _live_print() -> dict[str, Any] | None:
    """``docker buildx bake --print`` of BAKE_TARGETS, None where buildx is not installed."""
    if shutil.which("docker") is None:
        return None
    try:
        proc = subprocess.run(
            bake_print_command(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        if not _has_buildx():
            return None
        raise RuntimeError(f"`{' '.join(bake_print_command())}` failed: {proc.stderr.strip()}")
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


@cache
def bake() -> dict[str, Any]:
    """The resolved bake targets (``--print``'s "target"): live, else the stored answer."""
    printed = _live_print()
    if printed is None:
        printed = json.loads(BAKE_PRINT.read_text())
    targets: dict[str, Any] = printed["target"]
    return targets


def bake_target(name: str) -> dict[str, Any]:
    target: dict[str, Any] = bake()[name]
    return target


def _tag(target: str) -> str:
    tags = bake_target(target)["tags"]
    assert tags and isinstance(tags[0], str), f"target {target} has no tag in {BAKE_FILE}"
    return str(tags[0])


def image_ref(target: str = "app") -> str:
    """The reference the bake file tags ``target`` with: clickvote:latest."""
    return _tag(target)


def base_image() -> str:
    """BASE_IMAGE, its variables resolved: the registry base, e.g. python:3.13-slim-trixie."""
    return str(bake_target("app")["args"]["BASE_IMAGE"])


def local_base_image() -> str:
    """LOCAL_BASE_IMAGE: the offline base ``inv base`` builds."""
    return _tag("base")


def base_suite() -> str:
    """BASE_SUITE: the Debian suite of the offline base."""
    return str(bake_target("base")["args"]["BASE_SUITE"])


def extra_ca() -> str:
    """EXTRA_CA: the CA bundle handed to the build as the secret extra_ca ("" for none)."""
    for spec in bake_target("app").get("secret", []):
        fields = dict(part.split("=", 1) for part in str(spec).split(",") if "=" in part)
        if fields.get("id") == "extra_ca":
            return fields.get("src", "")
    return ""


def write_bake_print() -> None:
    """Store --print's answer for the defaults (no bake variable taken from the environment)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_CONFIG")}
    proc = subprocess.run(
        bake_print_command(), cwd=ROOT, capture_output=True, text=True, env=keep, check=True
    )
    BAKE_PRINT.write_text(json.dumps(json.loads(proc.stdout), indent=2) + "\n")


def platforms() -> list[str]:
    """The platforms every image is built for (PLATFORMS), e.g. ``linux/arm/v7``."""
    value = bake_target("app")["platforms"]
    assert isinstance(value, list), f"PLATFORMS is not a list in {BAKE_FILE}"
    return [str(p) for p in value]


def runs_natively(platform: str, host_machine: str) -> bool:
    """Whether a host of ``host_machine`` (uname -m) surely runs ``platform`` without QEMU."""
    row = table().get(platform)
    return row is not None and host_machine in row.native_on


def emulator_env_args(platform: str, host_machine: str) -> list[str]:
    """``docker run`` arguments (``-e NAME=VALUE``) for a container of ``platform`` on a host
    of ``host_machine``: none where it runs natively."""
    if runs_natively(platform, host_machine) or platform not in table():
        return []
    env = table()[platform].emulator_env
    return [arg for k, v in env.items() for arg in ("-e", f"{k}={v}")]


def platform_args(platform: str) -> list[str]:
    """``docker run`` arguments for a container of ``platform`` on this machine: the platform,
    and the emulator's settings where QEMU runs it (every place that runs one uses these)."""
    return ["--platform", platform, *emulator_env_args(platform, _host.machine())]


def arch_name(platform: str) -> str:
    """Short name used by tasks and sessions: linux/arm/v7 -> armv7."""
    return platform.removeprefix("linux/").replace("/", "")


def arches() -> dict[str, str]:
    """Short name -> platform, in the bake file's order."""
    return {arch_name(p): p for p in platforms()}


def image() -> str:
    """IMAGE: the app image's repository name."""
    return image_ref("app").rpartition(":")[0]


def test_image() -> str:
    """TEST_IMAGE: the test image's repository name."""
    return image_ref("test").rpartition(":")[0]


def python_version() -> str:
    return str(bake_target("app")["args"]["PYTHON_VERSION"])


if __name__ == "__main__":
    write_bake_print()
    print(f"wrote {BAKE_PRINT.relative_to(ROOT)}", file=sys.stderr)
