"""Host tasks: ``inv setup``, ``inv doctor``, ``inv base``."""

from __future__ import annotations

from typing import Any

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task

from ci import build as images
from ci import host, project
from tasks._common import failures, task


@task(help={"dry": "print what would be done, change nothing"})
def setup(c: Context, dry: bool = False) -> None:
    """Provision this host (Debian/Ubuntu): Docker engine, containerd store, QEMU, test services."""
    with failures():
        host.setup(dry=dry)


@task(
    help={
        "dry": "print what would be done, change nothing",
        "record": "write the roots' Debian packages to docker/base-packages/ (commit them)",
        "strict": "an error, not a warning, where the roots' packages differ from the record",
    }
)
def base(c: Context, dry: bool = False, record: bool = False, strict: bool = False) -> None:
    """Build the offline multi-platform base image (debootstrap) unless it is present; compare
    its roots' Debian packages with docker/base-packages/."""
    with failures():
        images.build_base(
            project.platforms(),
            project.local_base_image(),
            project.base_suite(),
            dry=dry,
            record=record,
            strict=strict,
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


TASKS: tuple[Task[Any], ...] = (setup, base, doctor)
