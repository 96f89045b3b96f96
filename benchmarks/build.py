"""Build benchmark: ``inv bench-build`` (or ``python -m benchmarks.build``).

From a cold build cache (the default builder's cache is pruned before each cold
build, pip cache mounts included, and the build runs with --no-cache: records
still held by images in the store are not reused) it times:

1. the app image for all platforms (docker/Dockerfile: native RUN steps only);
2. the app image for the native platform only;
3. a naive Dockerfile (benchmarks/naive.Dockerfile: pip inside each target
   platform, i.e. emulated RUN steps) for all platforms;
4. a warm rebuild of (1) after one app .py file changed.

It builds from a throw-away copy of the repository (step 4 edits a file there)
and counts, from ``--progress=plain`` output, the RUN steps that executed for a
non-native platform. Every build has a time limit. Prints figures only: it
asserts nothing about them.
"""

from __future__ import annotations

import os
import platform as host_platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ci import build as images
from ci import project, shell

NAIVE_DOCKERFILE = Path(__file__).with_name("naive.Dockerfile")
BUILD_TIMEOUT = 30 * 60
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".nox", "__pycache__", "*.egg-info", ".*_cache", "node_modules", "var"
)
# "#12 [linux/arm64 deps 2/3] RUN ..." -> platform label and instruction.
STEP = re.compile(r"^#(\d+) \[(?P<label>[^\]]*)\] (?P<instr>[A-Z]+)\b", re.M)
BENCH_TAG = "clickvote-bench"
REBUILD = "rebuild after 1 .py change (warm)"


@dataclass
class Result:
    name: str
    seconds: float
    emulated_runs: int


def native_platform() -> str:
    machine = host_platform.machine()
    for platform, m in project.MACHINES.items():
        if m == machine:
            return platform
    raise images.BuildError(f"this host ({machine}) builds none of the project's platforms")


def emulated_runs(log: str, native: str) -> int:
    """RUN steps whose stage ran on a non-native platform (not ``native->target``)."""
    steps: set[str] = set()
    for m in STEP.finditer(log):
        label = m["label"].split()[0] if m["label"] else ""
        foreign = label.startswith("linux/") and "->" not in label and label != native
        if m["instr"] == "RUN" and foreign:
            steps.add(m[1])
    return len(steps)


def prune_cache(dry: bool) -> None:
    cmd = ["docker", "buildx", "prune", "--builder", "default", "-af"]
    shell.change(cmd, dry=dry, timeout=None, quiet=True)


def timed(name: str, fn: Callable[[Path], None], logdir: Path, native: str) -> Result:
    log = logdir / f"{name.replace(' ', '-')}.log"
    shell.echo(f"bench: {name} (log: {log})")
    start = time.monotonic()
    fn(log)
    seconds = time.monotonic() - start
    return Result(name, seconds, emulated_runs(log.read_text(errors="replace"), native))


def bake(root: Path, platforms: list[str], base: str, cold: bool) -> Callable[[Path], None]:
    def go(log: Path) -> None:
        opts = images.BuildOptions(
            no_cache=cold,
            platforms=platforms,
            target="app",
            base=base,
            tag=f"{BENCH_TAG}:app",
            progress="plain",
            root=root,
            log=log,
        )
        images.build(opts)

    return go


def naive(root: Path, platforms: list[str], base: str) -> Callable[[Path], None]:
    def go(log: Path) -> None:
        base_ref, _ = images.resolve_base(base)
        ca = images.extra_ca_env()["EXTRA_CA"]
        cmd = [
            "docker",
            "buildx",
            "build",
            "--builder",
            "default",
            "--progress=plain",
            "--no-cache",
        ]
        cmd += ["--platform", ",".join(platforms), "-f", str(NAIVE_DOCKERFILE)]
        cmd += ["--build-arg", f"BASE_IMAGE={base_ref}", "-t", f"{BENCH_TAG}:naive"]
        cmd += ["--secret", f"id=extra_ca,src={ca}"] if ca else []
        with log.open("wb") as out:
            proc = subprocess.run(
                [*cmd, str(root)], stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT
            )
        if proc.returncode != 0:
            raise images.BuildError(f"naive build failed; see {log}")

    return go


def touch_app_file(root: Path) -> None:
    """Change one .py file of the copy (a comment: the behaviour stays the same)."""
    target = root / "clickvote" / "__init__.py"
    target.write_text(target.read_text() + f"# bench {time.time()}\n")


def report(results: list[Result]) -> None:
    by = {r.name: r for r in results}
    print("\nbuild benchmark (wall seconds, cold cache unless noted)")
    for r in results:
        print(f"  {r.name:<40} {r.seconds:8.1f} s   emulated RUN steps: {r.emulated_runs}")
    all3, one, nv = by.get("all platforms"), by.get("native only"), by.get("naive all platforms")
    if all3 and one:
        print(f"  {'all platforms / native only':<40} {all3.seconds / one.seconds:8.2f}x")
    if all3 and nv:
        print(f"  {'naive / all platforms':<40} {nv.seconds / all3.seconds:8.2f}x")


def run(base: str = "auto", skip_naive: bool = False, dry: bool = False) -> list[Result]:
    images.require_engine()
    platforms, native = project.platforms(), native_platform()
    images.require_emulation(platforms)
    logdir = Path(tempfile.mkdtemp(prefix="clickvote-bench-logs-"))
    with tempfile.TemporaryDirectory(prefix="clickvote-bench-") as tmp:
        root = Path(tmp) / "src"
        shutil.copytree(project.ROOT, root, ignore=COPY_IGNORE, symlinks=True)
        # (name, build, prune the cache first)
        plan: list[tuple[str, Callable[[Path], None], bool]] = []
        if not skip_naive:
            plan.append(("naive all platforms", naive(root, platforms, base), True))
        plan += [
            ("native only", bake(root, [native], base, cold=True), True),
            ("all platforms", bake(root, platforms, base, cold=True), True),
            (REBUILD, bake(root, platforms, base, cold=False), False),
        ]
        if dry:
            for name, _, cold in plan:
                shell.echo(
                    f"would time: {name}{' (after pruning the build cache)' if cold else ''}"
                )
            return []
        results = []
        for name, fn, cold in plan:
            if name == REBUILD:
                touch_app_file(root)
            if cold:
                prune_cache(dry)
            results.append(timed(name, fn, logdir, native))
    report(results)
    return results


if __name__ == "__main__":
    os.chdir(project.ROOT)
    run(skip_naive="--skip-naive" in sys.argv)
