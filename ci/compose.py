"""Local images for the services of ``docker/compose.yml`` (``inv compose-images``).

The recipe names public images (postgres, redis, nginx); where they cannot be pulled, the
bake group ``services`` builds stand-ins from Debian's packages on the project's base
image (``docker/services.Dockerfile``), for the native platform only. apt inside the build
uses the Debian mirror of the host's own apt configuration (``host.apt_mirror``, passed as
``APT_MIRROR``), never one written into the repository. Each service's image is chosen by
the variable ``CLICKVOTE_<SERVICE>_IMAGE`` of the recipe.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ci import build, host, project, shell

GROUP = "services"
TARGET_PREFIX = "service-"


def image_variable(service: str) -> str:
    """The recipe's variable selecting ``service``'s image: CLICKVOTE_POSTGRES_IMAGE, ..."""
    return f"CLICKVOTE_{service.upper()}_IMAGE"


def _bake(*args: str) -> list[str]:
    return ["docker", "buildx", "bake", "-f", str(project.BAKE_FILE), *args]


def service_images(env: dict[str, str] | None = None) -> dict[str, str]:
    """Service name -> the image reference the group ``services`` builds (bake --print)."""
    cp = subprocess.run(
        _bake("--print", GROUP),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=project.ROOT,
        env={**os.environ, **(env or {})},
    )
    if cp.returncode != 0:
        raise build.BuildError(f"docker buildx bake --print {GROUP} failed: {cp.stderr.strip()}")
    targets = json.loads(cp.stdout)["target"]
    return {
        name.removeprefix(TARGET_PREFIX): spec["tags"][0]
        for name, spec in targets.items()
        if name.startswith(TARGET_PREFIX)
    }


def apt_mirror() -> str:
    """The host's Debian mirror; empty (the base image's own sources) where it has none."""
    try:
        return host.apt_mirror()
    except host.HostError as exc:
        shell.echo(f"note: {exc}; apt in the build uses the base image's own sources")
        return ""


def build_env(base: str) -> dict[str, str]:
    """Environment of the bake: its variables BASE_IMAGE, APT_MIRROR and EXTRA_CA."""
    ref, _ = build.resolve_base(base)
    return {"BASE_IMAGE": ref, "APT_MIRROR": apt_mirror(), **build.extra_ca_env()}


def build_images(base: str = "auto", dry: bool = False, log: Path | None = None) -> dict[str, str]:
    """Build and load the service images; returns ``CLICKVOTE_<SERVICE>_IMAGE`` -> image."""
    build.require_engine()
    env = build_env(base)
    shell.echo(
        f"base image: {env['BASE_IMAGE']}; apt mirror: {env['APT_MIRROR'] or '(base image)'}"
    )
    cmd = _bake("--load", "--progress=plain", GROUP)
    if dry:
        shell.show(cmd, dry=True)
    else:
        with open(log, "wb") if log else open(os.devnull, "wb") as out:
            proc = subprocess.run(
                cmd,
                cwd=project.ROOT,
                env={**os.environ, **env},
                stdout=out if log else None,
                stderr=subprocess.STDOUT if log else None,
            )
        if proc.returncode != 0:
            raise build.BuildError(f"building the compose services failed (exit {proc.returncode})")
    return {image_variable(name): ref for name, ref in service_images(env).items()}
