"""Benchmark tasks: ``inv bench`` (runtime) and ``inv bench-build`` (image builds)."""

from __future__ import annotations

from typing import Any

from invoke.context import Context
from invoke.tasks import Task

from ci import build as images
from tasks._common import fail, failures, task


@task(
    help={
        "base": "base image: auto, local or registry (as for build)",
        "skip_naive": "leave out the naive (emulated pip) Dockerfile",
        "dry": "print the plan only",
    }
)
def bench_build(
    c: Context, base: str = "auto", skip_naive: bool = False, dry: bool = False
) -> None:
    """Time cold multi-platform builds vs native-only vs a naive Dockerfile (prunes the cache)."""
    from benchmarks import build as bench

    with failures():
        bench.run(base=base, skip_naive=skip_naive, dry=dry)


@task(
    help={
        "with_build": "also run the build benchmark (prunes the build cache; off by default)",
        "base": "base image: auto, local or registry",
        "reference": "commit the lean section compares with, same run (default: "
        "benchmarks/lean.py REFERENCE)",
        "platform": "the lean section's image platforms: amd64,arm64,... or all (default)",
        "only": "comma-separated sections (vote,workers,fanout,hot,emulation,footprint,lean); "
        "default: all",
        "nopyc": "the lean section also starts this platform's image without its pyc files",
    }
)
def bench(
    c: Context,
    with_build: bool = False,
    base: str = "auto",
    reference: str = "",
    platform: str = "all",
    only: str = "",
    nopyc: str = "",
) -> None:
    """Runtime benchmarks (vote path, fan-out, hot item, emulation, footprint, lean runtime
    vs a reference commit) -> benchmarks/RESULTS.md."""
    from benchmarks import run as bench_run

    picked = tuple(s.strip() for s in only.split(",") if s.strip()) or bench_run.SECTIONS
    unknown = sorted(set(picked) - set(bench_run.SECTIONS))
    if unknown:
        raise fail(f"unknown section(s): {', '.join(unknown)}")
    with failures():
        opts = bench_run.LeanOptions(
            reference=reference or bench_run.lean.REFERENCE,
            platforms=images.parse_platforms(platform),
            nopyc=images.parse_platforms(nopyc)[0] if nopyc else "",
        )
        bench_run.run(with_build=with_build, base=base, only=picked, lean_opts=opts)


TASKS: tuple[Task[Any], ...] = (bench_build, bench)
