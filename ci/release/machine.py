"""Facts about the machine a verification runs on, and emulation detection.

Emulation is detected, never declared: ``detect_emulation`` looks at facts a
report records (host ``uname -m``, the container's ``uname -m``, the CPU family
``/proc/cpuinfo`` shows inside the container, and the executable the kernel runs
for the container's main process as seen from the host: a QEMU binary when
binfmt_misc hands the image's binaries to QEMU). ``inv promote`` re-runs it on
each report's facts, so a report cannot simply claim "not emulated".
"""

from __future__ import annotations

import hashlib
import platform as _platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ci import project
from ci.release import ReleaseError

# What `uname -m` may say inside each platform's image (docker/platforms.toml: machine, also).
ACCEPTED_MACHINES: Mapping[str, frozenset[str]] = {
    p.name: p.machines for p in project.table().values()
}


def _native_machines(host: str) -> frozenset[str]:
    """The `uname -m` values a CPU of kind ``host`` (the host's `uname -m`) may show running
    code without an emulator: its own, and those of every platform it runs natively, surely
    or maybe (a 64-bit ARM CPU may run 32-bit ARM code); another platform's machine only as
    what that platform reports on such a host (linux/386 on x86_64 says x86_64)."""
    rows = project.table().values()
    machines = {p.machine for p in rows}
    out = {host}
    for p in rows:
        if host in p.native_on + p.maybe_native_on:
            out |= {p.machine, *(a for a in p.also if a not in machines or a == host)}
    return frozenset(out)


NATIVE: Mapping[str, frozenset[str]] = {
    host: _native_machines(host)
    for host in {h for p in project.table().values() for h in p.native_on + p.maybe_native_on}
}
# The CPU family /proc/cpuinfo shows for code of each `uname -m` (where it tells them apart).
FAMILY = {
    m: p.family
    for p in project.table().values()
    if p.family
    for m in (p.machine, *p.also, *p.native_on, *p.maybe_native_on)
}
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


def cpuinfo_family(cpuinfo: str) -> str | None:
    """``x86`` or ``arm`` from /proc/cpuinfo text, None when it does not say."""
    if re.search(r"^vendor_id\s*:\s*(GenuineIntel|AuthenticAMD|HygonGenuine)", cpuinfo, re.M):
        return "x86"
    if re.search(r"^flags\s*:.*\bsse2?\b", cpuinfo, re.M):
        return "x86"
    if re.search(r"^(CPU implementer|CPU architecture)\s*:", cpuinfo, re.M):
        return "arm"
    if re.search(r"^(Features|model name)\s*:.*\b(neon|asimd|ARMv\d)", cpuinfo, re.M | re.I):
        return "arm"
    return None


def cpu_model(cpuinfo: str) -> str:
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", cpuinfo, re.M)
        if m:
            return m.group(1).strip()
    parts = [
        m.group(0).strip() for m in re.finditer(r"^CPU (implementer|part)\s*:.*$", cpuinfo, re.M)
    ]
    return "; ".join(dict.fromkeys(parts)) or "unknown"


@dataclass(frozen=True)
class Emulation:
    emulated: bool
    evidence: list[str] = field(default_factory=list)


def detect_emulation(
    host_machine: str,
    container_machine: str,
    container_cpu_family: str | None,
    process_exe: str | None,
    interpreters: Iterable[str] = (),
) -> Emulation:
    """Emulated when any piece of evidence says so; the evidence lists each one."""
    evidence = []
    native = NATIVE.get(host_machine, frozenset({host_machine}))
    if container_machine not in native:
        evidence.append(f"a {host_machine} host cannot run {container_machine} code natively")
    if process_exe and ("qemu" in process_exe.lower() or process_exe in set(interpreters)):
        evidence.append(f"the container's process runs through {process_exe}")
    family = FAMILY.get(container_machine)
    if container_cpu_family and family and container_cpu_family != family:
        evidence.append(
            f"/proc/cpuinfo in the container shows an {container_cpu_family} CPU "
            f"while uname -m says {container_machine}"
        )
    return Emulation(bool(evidence), evidence)


def binfmt_handlers(root: Path = BINFMT_DIR) -> dict[str, str]:
    """Enabled binfmt_misc handlers of ELF binaries (CPU emulators): name -> 'interp (flags)'."""
    out: dict[str, str] = {}
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return out
    for entry in entries:
        if entry.name in ("register", "status"):
            continue
        try:
            text = entry.read_text()
        except OSError:
            continue
        if not text.startswith("enabled") or not re.search(r"^magic 7f454c46", text, re.M):
            continue  # only handlers of ELF binaries emulate CPUs (not .pyc, .jar ...)
        interp = re.search(r"^interpreter (.+)$", text, re.M)
        flags = re.search(r"^flags: ?(.*)$", text, re.M)
        interpreter = interp.group(1) if interp else "?"
        out[entry.name] = f"{interpreter} (flags {flags.group(1) if flags else ''})"
    return out


def fingerprint(machine_id_: str, cpu: str, host_machine: str) -> str:
    """sha256 of a machine id (the Docker engine's: ci/release/engine.py), CPU model and
    architecture: stable, reveals none of them."""
    material = "\0".join(["clickvote-machine-v1", machine_id_, cpu, host_machine])
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True)
class Host:
    machine: str
    kernel: str
    os: str
    cpu_model: str
    fingerprint: str
    binfmt: dict[str, str]
    model: str = "unknown"  # the device: "Raspberry Pi 4 Model B Rev 1.4"
    cpus: int = 0
    memory_mb: int = 0


def host_platform(machine: str | None = None) -> str:
    """The project platform this host runs natively, e.g. linux/arm64 on aarch64."""
    machine = machine or _platform.machine()
    for p, m in project.MACHINES.items():
        if machine in ACCEPTED_MACHINES.get(p, frozenset({m})) or machine == m:
            return p
    raise ReleaseError(
        f"this host's architecture {machine} is not one of the project's platforms; pass --platform"
    )
