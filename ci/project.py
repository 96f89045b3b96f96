"""Facts about the project that several tools need, read from their single source.

The platform list, the image names and the Python version are variables of
``docker/docker-bake.hcl``; this module reads their defaults so that nox can
name its sessions even before a Docker engine exists. ``docker buildx bake
--print`` resolves the same file (and any overrides) when an engine is there.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BAKE_FILE = ROOT / "docker" / "docker-bake.hcl"

# What `uname -m` / platform.machine() reports inside each platform's image.
MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64", "linux/arm/v7": "armv7l"}

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
