"""``inv build --reproducible-check``: the image built twice with the build cache bypassed
(``--no-cache``), each build exported to an OCI layout tarball in a temporary directory (not
the shared image store), and the two compared per platform by ``ci/imagediff.py``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

from ci import build as images
from ci import imagediff, shell

Build = Callable[[Path, Path], None]  # (OCI tarball to write, log file)


def bake_build(opts: images.BuildOptions) -> Build:
    """The bake of ``opts`` (platforms, target, base), uncached, into an OCI tarball."""

    def run(dest: Path, log: Path) -> None:
        once = dataclasses.replace(opts, no_cache=True, oci=dest, log=log, progress="plain")
        once.load = once.push = False
        images.build(once)

    return run


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
