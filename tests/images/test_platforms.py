"""One table of platform facts (docker/platforms.toml), read by everything: every platform the
bake file lists is in it, with its machine, Debian architecture and QEMU handler (or native);
the Dockerfile has no table of its own; the bake file is read as `docker buildx bake --print`
answers, and its stored answer (docker/docker-bake.print.json) is that answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ci import build, host, project

DOCKERFILE = (project.ROOT / "docker" / "Dockerfile").read_text()
FACTS = project.ROOT / "docker" / "platform_facts.py"
ISSUE_13 = [
    "linux/amd64",
    "linux/arm64",
    "linux/arm/v7",
    "linux/arm/v5",
    "linux/riscv64",
    "linux/ppc64le",
    "linux/s390x",
    "linux/386",
]


def facts(platform: str, fact: str, *more: str) -> str:
    cmd = [sys.executable, str(FACTS), str(project.PLATFORM_TABLE), platform, fact, *more]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def test_the_table_knows_every_platform_and_the_bake_file_builds_five() -> None:
    table = project.table()
    assert sorted(table) == sorted(ISSUE_13)
    assert project.platforms() == [
        "linux/amd64",
        "linux/arm64",
        "linux/arm/v7",
        "linux/386",
        "linux/riscv64",
    ]
    assert table["linux/arm/v7"].debian == "armhf" and table["linux/arm/v5"].debian == "armel"
    assert table["linux/ppc64le"].debian == "ppc64el" and table["linux/386"].machine == "i686"
    for row in table.values():
        assert row.machine and row.debian and row.qemu.startswith("qemu-"), row


def test_each_listed_platform_is_known() -> None:
    for p in project.platforms():
        assert p in project.MACHINES and p in project.DEBIAN_ARCH, p
    assert set(host.binfmt_handlers("x86_64").values()) == {
        p for p in project.platforms() if not project.runs_natively(p, "x86_64")
    }
    assert host.binfmt_handlers("x86_64")["qemu-arm"] == "linux/arm/v7"
    assert "linux/arm64" not in host.binfmt_handlers("aarch64").values()
    assert project.runs_natively("linux/386", "x86_64")
    assert not project.runs_natively("linux/386", "aarch64")


def test_the_dockerfile_reads_the_table() -> None:
    """No `case` table in the Dockerfile: its native stages ask docker/platform_facts.py."""
    assert "case " not in DOCKERFILE and "armhf" not in DOCKERFILE
    assert "platform_facts.py" in DOCKERFILE and "${TARGETPLATFORM}" in DOCKERFILE
    for p in project.platforms():
        assert facts(p, "machine") == project.MACHINES[p]
        assert facts(p, "debian") == project.DEBIAN_ARCH[p]
    assert facts("linux/386", "pip-platforms", "18").split() == [
        *("--platform", "manylinux_2_17_i686", "--platform", "manylinux_2_18_i686"),
        *("--platform", "manylinux2014_i686", "--platform", "manylinux2010_i686"),
        *("--platform", "manylinux1_i686"),
    ]
    assert facts("linux/arm/v7", "pip-platforms", "17") == "--platform manylinux_2_17_armv7l"
    bad = subprocess.run(
        [sys.executable, str(FACTS), str(project.PLATFORM_TABLE), "linux/mips", "machine"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "linux/mips" in bad.stderr


def test_emulated_arm64_uses_the_fast_pointer_authentication() -> None:
    assert project.emulator_env_args("linux/arm64", "x86_64") == [
        "-e",
        "QEMU_CPU=max,pauth-impdef=on",
    ]
    assert project.emulator_env_args("linux/arm64", "aarch64") == []  # native: no QEMU
    assert project.emulator_env_args("linux/386", "x86_64") == []


def test_base_is_debian_13_with_its_python() -> None:
    assert project.base_suite() == "trixie"
    assert project.local_base_image().endswith(":trixie")
    assert project.python_version() == "3.13"
    assert project.base_image() == "python:3.13-slim-trixie"
    assert (project.image_ref("app"), project.image()) == ("clickvote:latest", "clickvote")


def _print(env: dict[str, str]) -> dict[str, Any]:
    cmd = project.bake_print_command()
    out = subprocess.run(cmd, cwd=project.ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    printed: dict[str, Any] = json.loads(out.stdout)
    return printed


def test_without_buildx_the_stored_answer_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No docker (a fresh host) or docker without buildx (the test image): the stored answer."""
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho \"unknown shorthand flag: 'f' in -f\" >&2\nexit 125\n")
    fake.chmod(0o755)
    stored = json.loads(project.BAKE_PRINT.read_text())["target"]
    for path in ("", str(tmp_path)):
        monkeypatch.setenv("PATH", path)
        project.bake.cache_clear()
        try:
            assert project.bake() == stored
        finally:
            project.bake.cache_clear()


@pytest.mark.host
def test_the_stored_bake_answer_is_the_bake_files() -> None:
    """After a change to docker-bake.hcl: `python3 -m ci.project` stores its answer again."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    assert json.loads(project.BAKE_PRINT.read_text()) == _print(env)


@pytest.fixture
def bake_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Bake variables from the environment, as `docker buildx bake` reads them."""

    def setenv(**values: str) -> None:
        for k, v in values.items():
            monkeypatch.setenv(k, v)
        project.bake.cache_clear()

    yield setenv
    project.bake.cache_clear()


@pytest.mark.host
def test_local_base_image_from_the_environment_everywhere(
    bake_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LOCAL_BASE_IMAGE (and the variables BASE_IMAGE names) from the environment reach `inv
    base` and `inv doctor`, as they reach `inv build`."""
    from invoke.context import Context

    sys.path.insert(0, str(project.ROOT))
    from tasks import setup as tasks

    bake_env(LOCAL_BASE_IMAGE="mybase:7", BASE_SUITE="sid", PYTHON_VERSION="3.14")
    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        build, "build_base", lambda *a, dry, **flags: seen.update(base=(*a, dry), flags=flags)
    )
    monkeypatch.setattr(
        host,
        "doctor_checks",
        lambda refs: [seen.update(doctor=refs), host.Check("x", True, "")][1:],
    )
    tasks.base(Context(), dry=True)
    tasks.doctor(Context())
    assert seen["base"][1:] == ("mybase:7", "sid", True)
    assert seen["flags"] == {"record": False, "strict": False}
    assert seen["doctor"] == ["mybase:7", "python:3.14-slim-sid"]
    monkeypatch.setattr(build, "image_present", lambda ref: ref == "mybase:7")
    monkeypatch.setattr(build, "image_label", lambda ref, label: "3.14")
    assert build.resolve_base("local") == ("mybase:7", "3.14")
    pinned = "python:3.13-slim-trixie@sha256:" + "0f" * 32
    assert build.resolve_base(pinned) == (pinned, None)  # a candidate's base, as recorded
    with pytest.raises(build.BuildError, match="named by digest"):
        build.resolve_base("python:3.13-slim-trixie")


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
