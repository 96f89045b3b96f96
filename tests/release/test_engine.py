"""Which platform a verification picks, from the Docker engine's own answers (pure)."""

from __future__ import annotations

import pytest

from ci import project
from ci.release import ReleaseError, engine, machine

# A Raspberry Pi 4 with Raspberry Pi OS 32-bit: a 64-bit kernel, a 32-bit userland whose
# Docker engine is an `arm` binary (what `docker version` and `docker info` answer there).
PI_32_ON_64_VERSION = {
    "Client": {"Version": "26.1.5", "Os": "linux", "Arch": "arm"},
    "Server": {"Version": "26.1.5", "Os": "linux", "Arch": "arm", "KernelVersion": "6.6.51"},
}
PI_32_ON_64_INFO = {
    "ID": "3f0c8d2e-5a43-4b1e-9c4f-0d6b1e2a7c55",
    "Architecture": "aarch64",
    "OSType": "linux",
    "KernelVersion": "6.6.51+rpt-rpi-v8",
    "OperatingSystem": "Raspbian GNU/Linux 12 (bookworm)",
    "NCPU": 4,
    "MemTotal": 8052654080,
}
PI_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU part\t: 0xd08

Hardware\t: BCM2835
Revision\t: d03114
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""


def _engine(arch: str, kernel: str) -> tuple[dict[str, object], dict[str, object]]:
    return {"Server": {"Os": "linux", "Arch": arch}}, {"Architecture": kernel, "ID": "x"}


def test_a_32_bit_userland_on_a_64_bit_kernel_verifies_arm_v7() -> None:
    """uname -m says aarch64 there (machine.host_platform would pick linux/arm64); the
    engine runs linux/arm/v7 images, so that is the platform verified."""
    assert machine.host_platform("aarch64") == "linux/arm64"
    chosen = engine.platform_of(PI_32_ON_64_VERSION, PI_32_ON_64_INFO, project.platforms())
    assert chosen == "linux/arm/v7"


@pytest.mark.parametrize(
    ("arch", "kernel", "platform"),
    [
        ("amd64", "x86_64", "linux/amd64"),
        ("arm64", "aarch64", "linux/arm64"),
        ("arm", "armv7l", "linux/arm/v7"),
        ("arm", "armv8l", "linux/arm/v7"),
    ],
)
def test_the_engine_architecture_decides(arch: str, kernel: str, platform: str) -> None:
    version, info = _engine(arch, kernel)
    assert engine.platform_of(version, info, project.platforms()) == platform


def test_an_armv6_device_gets_an_older_variant_or_a_clear_error() -> None:
    version, info = _engine("arm", "armv6l")
    assert engine.platform_of(version, info, ["linux/arm/v7", "linux/arm/v5"]) == "linux/arm/v5"
    with pytest.raises(ReleaseError, match=r"runs linux/arm/v6, linux/arm/v5, none of"):
        engine.platform_of(version, info, ["linux/amd64", "linux/arm/v7"])


def test_host_facts_come_from_the_engine() -> None:
    host = engine.host(PI_32_ON_64_INFO, PI_CPUINFO)
    assert host.machine == "aarch64" and host.cpus == 4 and host.memory_mb == 7680
    assert host.os == "Raspbian GNU/Linux 12 (bookworm)"
    assert host.kernel == "Linux 6.6.51+rpt-rpi-v8"
    assert host.fingerprint == machine.fingerprint(
        str(PI_32_ON_64_INFO["ID"]), host.cpu_model, "aarch64"
    )
    if not any(engine._read(p) for p in engine.MODEL_FILES):  # not on a device-tree host
        assert host.model == "Raspberry Pi 4 Model B Rev 1.4"


def test_no_engine_id_no_fingerprint() -> None:
    with pytest.raises(ReleaseError, match="engine ID"):
        engine.host({"Architecture": "x86_64"}, "")
