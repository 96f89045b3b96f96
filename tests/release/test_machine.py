"""Emulation detection and machine fingerprints (no Docker)."""

from __future__ import annotations

from pathlib import Path

from ci.release import machine

X86_CPUINFO = (
    "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\n"
    "flags\t\t: fpu sse sse2\n"
)
ARM64_CPUINFO = (
    "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd\n"
    "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU part\t: 0xd08\n"
)
PI_CPUINFO = ARM64_CPUINFO + "Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"


def test_cpuinfo_family() -> None:
    assert machine.cpuinfo_family(X86_CPUINFO) == "x86"
    assert machine.cpuinfo_family(ARM64_CPUINFO) == "arm"
    assert machine.cpuinfo_family("") is None


def test_cpu_model() -> None:
    assert machine.cpu_model(X86_CPUINFO) == "Intel(R) Xeon(R)"
    assert machine.cpu_model(PI_CPUINFO) == "Raspberry Pi 4 Model B Rev 1.4"
    assert "0xd08" in machine.cpu_model(ARM64_CPUINFO)


def test_native_arm64() -> None:
    e = machine.detect_emulation("aarch64", "aarch64", "arm", "/usr/bin/python3.11")
    assert not e.emulated and e.evidence == []


def test_armv7_natively_on_arm64_hardware() -> None:
    assert not machine.detect_emulation("aarch64", "armv8l", "arm", "/usr/bin/python3.11").emulated


def test_arm_on_x86_is_emulated() -> None:
    e = machine.detect_emulation(
        "x86_64", "aarch64", "x86", "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
    )
    assert e.emulated and len(e.evidence) == 3


def test_qemu_on_an_arm_host_is_still_emulation() -> None:
    e = machine.detect_emulation(
        "aarch64",
        "armv7l",
        "arm",
        "/usr/local/bin/arm-wrapper",
        interpreters=["/usr/local/bin/arm-wrapper"],
    )
    assert e.emulated and "runs through" in e.evidence[0]


def test_fingerprint_is_stable_and_opaque() -> None:
    a = machine.fingerprint("abc", "Cortex-A72", "aarch64")
    assert a == machine.fingerprint("abc", "Cortex-A72", "aarch64")
    assert a != machine.fingerprint("abd", "Cortex-A72", "aarch64")
    assert "abc" not in a and len(a) == 64


def test_binfmt_handlers(tmp_path: Path) -> None:
    (tmp_path / "register").write_text("")
    (tmp_path / "status").write_text("enabled\n")
    (tmp_path / "qemu-aarch64").write_text(
        "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n"
        "magic 7f454c460201010000000000000000000200b700\n"
    )
    (tmp_path / "python3.11").write_text(
        "enabled\ninterpreter /usr/bin/python3.11\nflags: \noffset 0\nmagic a70d0d0a\n"
    )
    (tmp_path / "qemu-mips").write_text("disabled\ninterpreter /usr/bin/qemu-mips\nflags: \n")
    assert machine.binfmt_handlers(tmp_path) == {
        "qemu-aarch64": "/usr/libexec/qemu-binfmt/aarch64-binfmt-P (flags PF)"
    }


def test_host_platform() -> None:
    assert machine.host_platform("x86_64") == "linux/amd64"
    assert machine.host_platform("aarch64") == "linux/arm64"
    assert machine.host_platform("armv7l") == "linux/arm/v7"
