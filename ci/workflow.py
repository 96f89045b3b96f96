"""What the GitHub workflows (.github/workflows/) run on, from the single source of truth.

The setup job of each workflow runs ``inv ci-matrix``: the Python version and the
platforms come from docker/docker-bake.hcl (via ci/project.py), never from the YAML.
linux/arm64 runs on GitHub's native arm64 runners; the others on x86_64 runners,
natively (amd64, 386) or under QEMU.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ci import project

DEFAULT_RUNNER = ("ubuntu-24.04", "x86_64")
NATIVE_RUNNERS = {"linux/arm64": ("ubuntu-24.04-arm", "aarch64")}


def matrix(platforms: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """A ``strategy.matrix`` with one entry per platform: arch, platform, runner, emulated."""
    include = []
    for p in platforms:
        runner, machine = NATIVE_RUNNERS.get(p, DEFAULT_RUNNER)
        include.append(
            {
                "arch": project.arch_name(p),
                "platform": p,
                "runner": runner,
                "emulated": not project.runs_natively(p, machine),
            }
        )
    return {"include": include}


def outputs() -> str:
    """``name=value`` lines for ``$GITHUB_OUTPUT``: python, platforms, matrix."""
    platforms = project.platforms()
    return (
        f"python={project.python_version()}\n"
        f"platforms={','.join(platforms)}\n"
        f"matrix={json.dumps(matrix(platforms), separators=(',', ':'))}\n"
    )
