"""docker/requirements.py: pyproject.toml's requirements with markers judged for the target."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from ci import project

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docker" / "requirements.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("requirements", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


requirements = _load()
SPECS = [
    "plain>=1",
    "fast>=2; sys_platform == 'linux' and (platform_machine == 'x86_64' or "
    "platform_machine == 'aarch64')",
    "old<3; platform_machine == 'armv7l'",
]


def test_markers_are_judged_for_the_target_machine_not_this_one() -> None:
    assert requirements.for_machine(SPECS, "armv7l") == ["plain>=1", "old<3"]
    assert requirements.for_machine(SPECS, "aarch64") == ["plain>=1", "fast>=2"]
    assert requirements.for_machine(SPECS, "x86_64") == ["plain>=1", "fast>=2"]


def _listed(machine: str, *extra: str) -> list[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(ROOT / "pyproject.toml"), machine, *extra],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def test_the_projects_own_lists() -> None:
    runtime = {m: _listed(m) for m in ("x86_64", "aarch64", "armv7l")}
    assert runtime["x86_64"] == runtime["aarch64"] == runtime["armv7l"]  # one list everywhere
    assert not any(line.startswith("uvloop") for line in runtime["x86_64"])
    assert any(line.startswith("pytest") for line in _listed("armv7l", "test"))
    dev = {m: _listed(m, "dev") for m in ("x86_64", "aarch64", "armv7l")}
    assert not any(";" in line for lines in dev.values() for line in lines)  # no markers left
    assert any(line.startswith("uvloop") for line in dev["x86_64"])
    assert any(line.startswith("uvloop") for line in dev["aarch64"])
    assert not any(line.startswith("uvloop") for line in dev["armv7l"])  # no wheel there


def _names(lines: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower() for line in lines}


def test_compiled_accelerators_only_where_they_have_wheels() -> None:
    """orjson and bcrypt are optional (the code runs without them); each platform's list
    names them only where pip finds a wheel for it."""
    names = {m: _names(_listed(m)) for m in [*project.MACHINES.values(), "armv5tel", "armv6l"]}
    everywhere = {"starlette", "fastjsonschema", "uvicorn", "wsproto", "psycopg", "redis"}
    for machine, listed in names.items():
        assert everywhere <= listed, machine
    for machine in ("x86_64", "aarch64", "armv7l"):
        assert {"orjson", "bcrypt"} <= names[machine], machine
    assert all("orjson" in names[m] for m in ("i686", "ppc64le", "s390x"))
    for machine in ("riscv64", "ppc64le", "s390x", "i686", "armv5tel", "armv6l"):
        assert "bcrypt" not in names[machine], machine
    for machine in ("riscv64", "armv5tel", "armv6l"):
        assert "orjson" not in names[machine], machine


def test_bad_usage_is_a_message_not_a_traceback() -> None:
    r = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "requirements.py" in r.stderr and "Traceback" not in r.stderr
