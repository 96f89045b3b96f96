"""Every platform the bake file lists is known everywhere it must be: its machine, Debian
architecture, QEMU handler (or native), the Dockerfile's target mappings, the base's suite."""

from __future__ import annotations

import re

from ci import build, host, project

DOCKERFILE = (project.ROOT / "docker" / "Dockerfile").read_text()


def test_each_listed_platform_is_known() -> None:
    platforms = project.platforms()
    assert {"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/386", "linux/riscv64"} <= set(
        platforms
    )
    for p in platforms:
        assert p in project.MACHINES and p in project.DEBIAN_ARCH, p
        assert p in project.QEMU_HANDLERS or project.runs_natively(p, "x86_64"), p
        # the Dockerfile maps docker's TARGETARCH+TARGETVARIANT to pip's machine and apt's arch
        arch = project.arch_name(p)
        cases = re.findall(r"(?:^|;;)\s*([a-z0-9|]+)\)", DOCKERFILE, re.M)
        assert sum(arch in c.split("|") for c in cases) == 2, arch
    assert set(host.binfmt_handlers().values()) == {
        p for p in platforms if not project.runs_natively(p, "x86_64")
    }
    assert project.runs_natively("linux/386", "x86_64")
    assert not project.runs_natively("linux/386", "aarch64")


def test_emulated_arm64_uses_the_fast_pointer_authentication() -> None:
    assert project.emulator_env_args("linux/arm64", "x86_64") == [
        "-e",
        "QEMU_CPU=max,pauth-impdef=on",
    ]
    assert project.emulator_env_args("linux/arm64", "aarch64") == []  # native: no QEMU
    assert project.emulator_env_args("linux/386", "x86_64") == []


def test_base_is_debian_13_with_its_python() -> None:
    assert build.var("BASE_SUITE") == "trixie"
    assert build.var("LOCAL_BASE_IMAGE").endswith(":trixie")
    assert project.python_version() == "3.13"
    assert build.registry_base() == "python:3.13-slim-trixie"


def test_machine_probe_names_a_32_bit_x86_python_i686() -> None:
    for machine, maxsize, expected in [
        ("x86_64", 2**31 - 1, "i686"),
        ("x86_64", 2**63 - 1, "x86_64"),
        ("riscv64", 2**63 - 1, "riscv64"),
    ]:
        scope = {"platform": _Fake(machine), "sys": _Sys(maxsize)}
        code = project.MACHINE_PROBE.replace("import platform, sys; ", "")
        exec(code, scope)
        assert scope["m"] == expected


class _Fake:
    def __init__(self, machine: str) -> None:
        self._m = machine

    def machine(self) -> str:
        return self._m


class _Sys:
    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
