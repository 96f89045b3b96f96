"""Image tasks: ``inv build``, ``inv validate``, ``inv compose-images``, ``inv lock``."""

from __future__ import annotations

from typing import Any

from invoke.context import Context
from invoke.tasks import Task

from ci import build as images
from ci import project
from tasks._common import fail, failures, task


@task(
    help={
        "platform": f"{', '.join(project.arches())}, all, or a comma list (default: all)",
        "target": "app (runtime image) or test (app + tests)",
        "load": "load the image into the local store (all platforms: one manifest list)",
        "push": "push to the registry named in --tag",
        "tag": "image reference (default: IMAGE:TAG or TEST_IMAGE:TAG from the bake file)",
        "print": "print the resolved bake configuration instead of building",
        "base": "base image: auto (registry if reachable, else local), local, registry, "
        "or one named by digest (NAME@sha256:...)",
        "dry": "print the bake command instead of running it",
        "reproducible_check": "build the commit twice without cache (two checkouts, OCI "
        "tarballs in a temporary directory), compare the image digests per platform, name "
        "what differs",
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
    reproducible_check: bool = False,
) -> None:
    """Build the multi-platform image(s) with docker buildx bake."""
    with failures():
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
        if not reproducible_check:
            images.build(opts)
            return
        from ci import reproducible, shell

        if load or push or print or dry:
            raise fail("--reproducible-check builds to temporary files only (no --load, ...)")
        if reproducible.uncommitted(images.ROOT):
            shell.echo("note: uncommitted changes are not built: the check builds HEAD")
        if not reproducible.check(reproducible.bake_build(opts)):
            raise fail("the two builds differ (see above)")


@task(
    help={
        "base": "base image: auto, local or registry (as for build)",
        "dry": "print the bake command instead of running it",
    }
)
def validate(c: Context, base: str = "auto", dry: bool = False) -> None:
    """Run the check-only bake group `validate` (lint inside a build, exports nothing)."""
    with failures():
        images.validate(dry=dry, base=base)


@task(
    help={
        "base": "base image: auto, local or registry (as for build)",
        "dry": "print the bake command instead of running it",
    }
)
def compose_images(c: Context, base: str = "auto", dry: bool = False) -> None:
    """Build docker/compose.yml's postgres, redis and nginx from Debian's packages (native)."""
    from ci import compose

    with failures():
        found = compose.build_images(base, dry=dry)
    print("# docker/compose.yml runs these when the variables are set:")
    for name, ref in found.items():
        print(f"export {name}={ref}")


@task(
    help={
        "check": "only say whether docker/lock/ still answers pyproject.toml (no download)",
        "dry": "print the pip commands instead of running them, write nothing",
    }
)
def lock(c: Context, check: bool = False, dry: bool = False) -> None:
    """Lock the images' Python dependencies for every platform (docker/lock/, with hashes)."""
    from ci import lock as locking
    from ci import lockfile

    with failures():
        if not check:
            locking.write(dry=dry)
        if dry:
            return
        if found := lockfile.problems(locking.PYPROJECT):
            raise fail("\n  ".join([lockfile.RELOCK, *found]))
        print("ok: docker/lock/ answers pyproject.toml")


TASKS: tuple[Task[Any], ...] = (build, compose_images, lock, validate)
