"""``inv build --reproducible-check``: the image built twice with the build cache bypassed
(``--no-cache``), each build exported to an OCI layout tarball in a temporary directory (not
the shared image store), and the two compared per platform by ``ci/imagediff.py``.

Both builds are of the commit checked out (``git archive HEAD``), as two machines would
check it out: the first with what ``git archive`` gives (the commit's time, umask 002), the
second with another umask (022) and every mtime set long before the commit
(``OTHER_CHECKOUT``), which no timestamp rewriting clamps. Uncommitted changes are not built.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from ci import build as images
from ci import imagediff, shell

Build = Callable[[Path, Path], None]  # (OCI tarball to write, log file)
OTHER_CHECKOUT = 1_000_000_000  # 2001-09-09: the second build's files' mtime


def export(
    root: Path, dest: Path, mtime: int | None = None, umask: str = "0002", commit: str = "HEAD"
) -> Path:
    """``git archive COMMIT`` of ``root`` into ``dest`` with ``umask``; every path's mtime set
    to ``mtime``."""
    dest.mkdir(parents=True)
    git = ["git", "-C", str(root), "-c", f"tar.umask={umask}", "archive", commit]
    archive = subprocess.run(git, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    if mtime is not None:
        for path in [dest, *dest.rglob("*")]:
            os.utime(path, (mtime, mtime), follow_symlinks=False)
    return dest


def bake_build(opts: images.BuildOptions) -> Build:
    """The bake of ``opts`` (platforms, target, base) from a fresh export of the commit,
    uncached, into an OCI tarball; each build after the first from an older checkout."""
    builds: list[Path] = []

    def run(dest: Path, log: Path) -> None:
        other = (OTHER_CHECKOUT, "0022") if builds else (None, "0002")
        src = export(opts.root, dest.with_name(dest.stem + "-src"), *other)
        builds.append(dest)
        once = dataclasses.replace(opts, root=src, no_cache=True, oci=dest, log=log)
        once.load = once.push = False
        once.progress = "plain"
        images.build(once)

    return run


def uncommitted(root: Path) -> bool:
    out = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True)
    return bool(out.stdout.strip())


def twice(build: Build, work: Path) -> list[imagediff.PlatformResult]:
    """Run ``build`` twice into ``work`` and compare what the two wrote."""
    out = []
    for n in (1, 2):
        dest, log = work / f"build{n}.tar", work / f"build{n}.log"
        shell.echo(f"build {n} of 2 (log: {log})")
        try:
            build(dest, log)
        except shell.ToolError as e:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise shell.ToolError(f"build {n} failed: {e}\n{tail}") from e
        out.append(dest)
    return imagediff.compare(out[0], out[1])


def check(build: Build, keep: Path | None = None) -> bool:
    """Build twice, print the comparison; True when every platform's digest is equal.

    ``keep``: the directory to build into, left in place (default: a temporary one)."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        results = twice(build, keep)
    else:
        with tempfile.TemporaryDirectory(prefix="clickvote-repro-") as tmp:
            results = twice(build, Path(tmp))
    print(imagediff.report(results), flush=True)
    return all(r.equal for r in results) and bool(results)
