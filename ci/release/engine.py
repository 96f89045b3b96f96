"""The Docker engine a verification runs against: which platform it runs, and the facts
about its machine. Read from ``docker version`` and ``docker info`` (never ``uname``), so
the same answers hold natively (``inv verify``) and inside the verifier container.

A Raspberry Pi with a 32-bit userland on a 64-bit kernel is why: ``uname -m`` says
aarch64 there, while its Docker engine (a 32-bit ``arm`` binary) runs linux/arm/v7 images.
The engine's own architecture (``docker version``: Server.Arch, Go's GOARCH) decides; the
kernel's (``docker info``: Architecture) only picks the ARM variant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ci import shell
from ci.release import ReleaseError, machine

TIMEOUT = 60.0
# ARM variants a 32-bit ARM engine runs, best first, by the kernel's `uname -m`.
_ARM_VARIANTS = {"armv6l": ("v6", "v5"), "armv5tel": ("v5",), "armv5l": ("v5",)}
_ARM_DEFAULT = ("v7", "v6", "v5")
MODEL_FILES = ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model")
DMI = Path("/sys/class/dmi/id")


def docker_json(*args: str) -> dict[str, Any]:
    proc = shell.run(["docker", *args, "--format", "{{json .}}"], timeout=TIMEOUT, check=False)
    try:
        data = json.loads(proc.stdout or b"null")
    except ValueError:
        data = None
    if not isinstance(data, dict) or (args[0] == "version" and not data.get("Server")):
        err = (proc.stderr or b"").decode(errors="replace").strip()
        raise ReleaseError(f"no Docker engine answers `docker {' '.join(args)}`: {err[-300:]}")
    return data


def candidates(version: Mapping[str, Any], info: Mapping[str, Any]) -> list[str]:
    """Platforms the engine runs natively, best first."""
    server = version.get("Server") or {}
    os_ = str(server.get("Os") or info.get("OSType") or "linux")
    arch = str(server.get("Arch") or "")
    kernel = str(info.get("Architecture") or "")
    if not arch:
        raise ReleaseError("`docker version` does not name the engine's architecture")
    if arch == "arm":
        variants = _ARM_VARIANTS.get(kernel, _ARM_DEFAULT)
        return [f"{os_}/arm/{v}" for v in variants]
    return [f"{os_}/{arch}"]


def platform_of(
    version: Mapping[str, Any], info: Mapping[str, Any], platforms: Sequence[str]
) -> str:
    """The first of the project's ``platforms`` that this engine runs natively."""
    native = candidates(version, info)
    for p in native:
        if p in platforms:
            return p
    raise ReleaseError(
        f"this Docker engine runs {', '.join(native)}, none of the candidate's platforms "
        f"({', '.join(platforms)}); pass --platform to verify one under emulation"
    )


def device_model(cpuinfo: str) -> str:
    """The device's model: device tree (ARM boards), /proc/cpuinfo's Model line
    (Raspberry Pi kernels), DMI (PCs, cloud instances); "unknown" when none says."""
    for path in MODEL_FILES:
        text = _read(path).strip("\0\n ")
        if text:
            return text
    m = re.search(r"^Model\s*:\s*(.+)$", cpuinfo, re.M)
    if m:
        return m.group(1).strip()
    dmi = " ".join(
        v for v in (_read(str(DMI / n)).strip() for n in ("sys_vendor", "product_name")) if v
    )
    return dmi or "unknown"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def host(info: Mapping[str, Any], cpuinfo: str) -> machine.Host:
    """The machine under the engine. Its fingerprint rests on the engine's ID (kept in its
    data root), so it is the same from the host and from inside the verifier container."""
    engine_id = str(info.get("ID") or "")
    if not engine_id:
        raise ReleaseError("`docker info` gives no engine ID: cannot fingerprint this machine")
    arch = str(info.get("Architecture") or "unknown")
    model = machine.cpu_model(cpuinfo)
    return machine.Host(
        machine=arch,
        kernel=f"Linux {info.get('KernelVersion', '')}".strip(),
        os=str(info.get("OperatingSystem") or "unknown"),
        cpu_model=model,
        fingerprint=machine.fingerprint(engine_id, model, arch),
        binfmt=machine.binfmt_handlers(),
        model=device_model(cpuinfo),
        cpus=int(info.get("NCPU") or 0),
        memory_mb=round(int(info.get("MemTotal") or 0) / 2**20),
    )
