"""Disk space for image builds.

BuildKit's cache grows by every commit's layers and nothing bounds it: the builder's own
``--keep-storage`` counts, under the containerd image store, far less than its snapshots
hold on disk (here it counted 6 GB where pruning freed 65 GB), so a machine that builds many
commits runs out of disk in the middle of a build, with errors far from the cause.

Before a build, when the disk holding Docker's data has less than ``min_free_gb()`` free, the
build cache is pruned: first what no build has used for a day, then all of it, each step
printed. Images, containers and volumes are never touched. When that is not enough the build
stops at once with a message that says so, instead of failing later with ENOSPC.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ci import shell
from ci.shell import ToolError

DEFAULT_MIN_FREE_GB = 20.0  # the suite's five test images and their tarballs, with room
ENV = "CLICKVOTE_MIN_FREE_GB"
# Each step: the prune's filter arguments and what it removes, in the order they are tried.
PRUNE_STEPS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("--filter", "until=24h"), "what no build used for a day"),
    (("--all",), "all of it"),
)


def min_free_gb() -> float:
    """The free space a build wants, in GB: ``CLICKVOTE_MIN_FREE_GB`` or the default."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return DEFAULT_MIN_FREE_GB
    try:
        value = float(raw)
    except ValueError:
        raise ToolError(f"{ENV}={raw!r} is not a number of GB (e.g. {ENV}=10)") from None
    if value < 0:
        raise ToolError(f"{ENV}={raw!r} must be 0 or more GB")
    return value


def docker_root() -> Path:
    """The directory that holds Docker's data (images, build cache), as the engine says."""
    out = shell.output(["docker", "info", "--format", "{{.DockerRootDir}}"], timeout=20)
    root = Path(out.strip()) if out and out.strip() else Path("/var/lib/docker")
    # A root that doesn't exist here (a remote engine): measure the nearest existing parent.
    while not root.exists() and root != root.parent:
        root = root.parent
    return root


def free_gb(path: Path) -> float:
    return shutil.disk_usage(path).free / 1e9


def ensure_build_space(
    dry: bool,
    *,
    need_gb: float | None = None,
    root: Path | None = None,
    measure: Callable[[Path], float] = free_gb,
) -> None:
    """Prune the build cache, step by step, until ``need_gb`` is free on Docker's disk;
    raise ToolError when even an empty build cache leaves too little."""
    need = min_free_gb() if need_gb is None else need_gb
    where = root or docker_root()
    free = measure(where)
    if free >= need:
        return
    for args, what in PRUNE_STEPS:
        shell.echo(
            f"{free:.1f} GB free on {where}, below the {need:.0f} GB a build wants: "
            f"pruning the build cache ({what})"
        )
        shell.change(["docker", "builder", "prune", "--force", *args], dry=dry, timeout=1800)
        if dry:
            return
        free = measure(where)
        if free >= need:
            shell.echo(f"{free:.1f} GB free on {where} now")
            return
    raise ToolError(
        f"only {free:.1f} GB free on {where} with the build cache empty; a build wants "
        f"{need:.0f} GB. `docker system df` shows what holds the rest (images, volumes); "
        f"free some, or set {ENV} lower if you know the build fits"
    )
