"""Developer and CI tasks: ``inv --list``.

Build section (issue 2): host provisioning, the offline base image and the
multi-platform images. The release section is at the end of this file.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from typing import ParamSpec

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from ci import build as images
from ci import host, project

P = ParamSpec("P")


def _guard(fn: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
    """Run ``fn``; a failed precondition becomes a clean ``Exit`` (no traceback)."""
    try:
        fn(*args, **kwargs)
    except (host.HostError, images.BuildError) as e:
        raise Exit(f"error: {e}", code=1) from e
    except subprocess.CalledProcessError as e:
        raise Exit(f"error: `{shlex.join(map(str, e.cmd))}` failed (exit {e.returncode})") from e


@task(help={"dry": "print what would be done, change nothing"})
def setup(c: Context, dry: bool = False) -> None:
    """Provision this host (Debian/Ubuntu): Docker engine, containerd store, QEMU, test services."""
    _guard(host.setup, dry)


@task(help={"dry": "print what would be done, change nothing"})
def base(c: Context, dry: bool = False) -> None:
    """Build the offline multi-platform base image (debootstrap) unless it is present."""
    _guard(
        images.build_base,
        project.platforms(),
        project.local_base_image(),
        project.base_suite(),
        dry,
    )


@task
def doctor(c: Context) -> None:
    """Check every precondition of the builds; prints a fix for each failing line."""
    checks = host.doctor_checks([project.local_base_image(), project.base_image()])
    width = max(len(ch.name) for ch in checks)
    for ch in checks:
        line = f"{'ok  ' if ch.ok else 'FAIL'} {ch.name:<{width}}  {ch.detail}"
        print(line + ("" if ch.ok else f"  -> fix: {ch.fix}"))
    failed = [ch.name for ch in checks if not ch.ok]
    if failed:
        raise Exit(f"doctor: {len(failed)} failing: {', '.join(failed)}", code=1)


@task(
    help={
        "platform": f"{', '.join(project.arches())}, all, or a comma list (default: all)",
        "target": "app (runtime image) or test (app + tests)",
        "load": "load the image into the local store (all platforms: one manifest list)",
        "push": "push to the registry named in --tag",
        "tag": "image reference (default: IMAGE:TAG or TEST_IMAGE:TAG from the bake file)",
        "print": "print the resolved bake configuration instead of building",
        "base": "base image: auto (registry if reachable, else local), local, registry",
        "dry": "print the bake command instead of running it",
    }
)
def build(
    c: Context,
    platform: str = "all",
    target: str = "app",
    load: bool = False,
    push: bool = False,
    tag: str = "",
    print: bool = False,  # the flag is --print
    base: str = "auto",
    dry: bool = False,
) -> None:
    """Build the multi-platform image(s) with docker buildx bake."""
    try:
        opts = images.BuildOptions(
            platforms=images.parse_platforms(platform),
            target=target,
            load=load,
            push=push,
            tag=tag,
            base=base,
            dry=dry,
            print_config=print,
        )
    except images.BuildError as e:
        raise Exit(f"error: {e}", code=1) from e
    _guard(images.build, opts)


@task(
    help={
        "base": "base image: auto, local or registry (as for build)",
        "dry": "print the bake command instead of running it",
    }
)
def compose_images(c: Context, base: str = "auto", dry: bool = False) -> None:
    """Build docker/compose.yml's postgres, redis and nginx from Debian's packages (native)."""
    from ci import compose

    found: dict[str, str] = {}
    _guard(lambda: found.update(compose.build_images(base, dry)))
    print("# docker/compose.yml runs these when the variables are set:")
    for name, ref in found.items():
        print(f"export {name}={ref}")


@task(
    help={
        "base": "base image: auto, local or registry (as for build)",
        "dry": "print the bake command instead of running it",
    }
)
def validate(c: Context, base: str = "auto", dry: bool = False) -> None:
    """Run the check-only bake group `validate` (lint inside a build, exports nothing)."""
    _guard(images.validate, dry, base)


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

    _guard(bench.run, base=base, skip_naive=skip_naive, dry=dry)


@task(
    help={
        "with_build": "also run the build benchmark (prunes the build cache; off by default)",
        "base": "base image: auto, local or registry",
        "reference": "commit the lean section compares with, same run (default: "
        "benchmarks/lean.py REFERENCE)",
        "platform": "the lean section's image platforms: amd64,arm64,... or all (default)",
        "only": "comma-separated sections (vote,fanout,hot,emulation,footprint,lean); default: all",
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

    def go() -> None:
        picked = tuple(s.strip() for s in only.split(",") if s.strip()) or bench_run.SECTIONS
        unknown = sorted(set(picked) - set(bench_run.SECTIONS))
        if unknown:
            raise images.BuildError(f"unknown section(s): {', '.join(unknown)}")
        opts = bench_run.LeanOptions(
            reference=reference or bench_run.lean.REFERENCE,
            platforms=images.parse_platforms(platform),
            nopyc=images.parse_platforms(nopyc)[0] if nopyc else "",
        )
        bench_run.run(with_build=with_build, base=base, only=picked, lean_opts=opts)

    _guard(go)


# --- build section: the collection ---------------------------------------------------------

ns = Collection(setup, base, doctor, build, compose_images, validate, bench_build, bench)

# --- release -------------------------------------------------------------------------------
# Release tasks (ci/release.py) go below; add them to `ns` with ns.add_task(...).
# Tasks: registry, publish, manifest, manifest-create, verify, promote (ci/release_tasks.py,
# logic in ci/release/).
from ci import release_tasks  # noqa: E402

release_tasks.add_to(ns)
