"""Facts about the project that several tools need, read from their single source.

The platform list, the image names and the Python version are variables of
``docker/docker-bake.hcl``; this module reads their defaults so that nox can
name its sessions even before a Docker engine exists. ``docker buildx bake
--print`` resolves the same file (and any overrides) when an engine is there.
"""

from __future__ import annotations

import json
import platform as _host
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BAKE_FILE = ROOT / "docker" / "docker-bake.hcl"

# Facts about each platform the bake file may list (PLATFORMS picks which are built).
# The machine each platform's Python and wheels are for (uname -m inside its image; linux/386
# on an amd64 kernel reports x86_64 there, see machine_of); its Debian architecture; and the
# QEMU binfmt handler that runs it on an amd64 host (linux/386 runs natively).
MACHINES = {
    "linux/amd64": "x86_64",
    "linux/arm64": "aarch64",
    "linux/arm/v7": "armv7l",
    "linux/386": "i686",
    "linux/riscv64": "riscv64",
    "linux/ppc64le": "ppc64le",
    "linux/s390x": "s390x",
}
DEBIAN_ARCH = {
    "linux/amd64": "amd64",
    "linux/arm64": "arm64",
    "linux/arm/v7": "armhf",
    "linux/386": "i386",
    "linux/riscv64": "riscv64",
    "linux/ppc64le": "ppc64el",
    "linux/s390x": "s390x",
}
QEMU_HANDLERS = {
    "linux/arm64": "qemu-aarch64",
    "linux/arm/v7": "qemu-arm",
    "linux/riscv64": "qemu-riscv64",
    "linux/ppc64le": "qemu-ppc64le",
    "linux/s390x": "qemu-s390x",
}
# Environment for a container of each emulated platform, read by qemu-user itself. Debian 13's
# arm64 binaries sign return addresses (pointer authentication); QEMU's default, the
# architected QARMA5 algorithm, made the in-image suite ten times slower than its own
# implementation-defined one, which runs the same code alike.
EMULATOR_ENV = {"linux/arm64": {"QEMU_CPU": "max,pauth-impdef=on"}}
# Platforms an amd64 kernel runs without QEMU besides its own.
NATIVE_ALSO = {"x86_64": ("linux/386",)}
# Python code that sets m to the machine as MACHINES names it (a 32-bit x86 Python on a 64-bit
# kernel is i686, as pip's wheel tags have it).
MACHINE_PROBE = (
    "import platform, sys; m = platform.machine(); "
    "m = 'i686' if m in ('x86_64', 'i386', 'i586') and sys.maxsize < 2**32 else m"
)

_VARIABLE = re.compile(
    r'variable\s+"(?P<name>[A-Z_][A-Z0-9_]*)"\s*\{\s*default\s*=\s*(?P<value>"[^"]*"|\[[^\]]*\])',
    re.S,
)


@cache
def bake_defaults() -> dict[str, str | list[str]]:
    """The default of every string or list-of-strings variable in the bake file."""
    text = BAKE_FILE.read_text()
    out: dict[str, str | list[str]] = {}
    for m in _VARIABLE.finditer(text):
        out[m["name"]] = json.loads(m["value"])
    return out


def _var(name: str) -> str:
    value = bake_defaults()[name]
    assert isinstance(value, str), f"{name} is not a string in {BAKE_FILE}"
    return value


def platforms() -> list[str]:
    """The platforms every image is built for, e.g. ``linux/arm/v7``."""
    value = bake_defaults()["PLATFORMS"]
    assert isinstance(value, list), f"PLATFORMS is not a list in {BAKE_FILE}"
    return value


def runs_natively(platform: str, host_machine: str) -> bool:
    return MACHINES.get(platform) == host_machine or platform in NATIVE_ALSO.get(host_machine, ())


def emulator_env_args(platform: str, host_machine: str) -> list[str]:
    """``docker run`` arguments (``-e NAME=VALUE``) for a container of ``platform`` on a host
    of ``host_machine``: none where it runs natively."""
    if runs_natively(platform, host_machine):
        return []
    return [arg for k, v in EMULATOR_ENV.get(platform, {}).items() for arg in ("-e", f"{k}={v}")]


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
    return _var("IMAGE")


def test_image() -> str:
    return _var("TEST_IMAGE")


def python_version() -> str:
    return _var("PYTHON_VERSION")
