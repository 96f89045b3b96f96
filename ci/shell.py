"""Running external commands, for the build side (``ci/host.py``, ``ci/build.py``) and the
release side (``ci/release/``) alike: one error type, one way to show a command, ``--dry``
handled in one place.

Messages and the commands run go to stderr (stdout stays for what a task answers, e.g. the
``export`` lines of ``inv compose-images``): ``$ cmd`` before a command runs, ``[dry] cmd``
in its place when ``dry``.
"""

from __future__ import annotations

import io
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

DEFAULT_TIMEOUT = 600.0
quote = shlex.join


class ToolError(Exception):
    """A precondition, check or command that failed; the message says which, why and, where
    it can, how to fix it."""


def echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def show(args: Sequence[str], dry: bool) -> None:
    """The one way a command is shown: ``$ cmd`` when it runs, ``[dry] cmd`` when it won't."""
    echo(("[dry] " if dry else "$ ") + quote(args))


def run(
    args: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    stdin: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command, capture its output; raise ToolError on failure if ``check``."""
    try:
        proc = subprocess.run(list(args), input=stdin, capture_output=True, timeout=timeout)
    except FileNotFoundError as e:
        raise ToolError(f"{args[0]} is not installed ({e})") from e
    except subprocess.TimeoutExpired as e:
        raise ToolError(f"timed out after {timeout:.0f}s: {quote(args)}") from e
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise ToolError(f"command failed ({proc.returncode}): {quote(args)}\n{err}")
    return proc


def text(args: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> str:
    return run(args, timeout=timeout).stdout.decode()


def output(args: Sequence[str], timeout: float = 20) -> str | None:
    """stdout of a command, or None when it fails or is missing (a probe, never an error)."""
    try:
        cp = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return cp.stdout if cp.returncode == 0 else None


def _stream() -> int | None:
    """Our stderr's file descriptor; None (inherit) where it has none (pytest capture)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, io.UnsupportedOperation):
        return None


def change(
    args: Sequence[str],
    *,
    dry: bool,
    timeout: float | None = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    quiet: bool = False,
) -> None:
    """Run a state-changing command, streaming its output to stderr (``quiet``: dropping
    it); with ``dry`` only show it. ``timeout`` None: no limit (apt, image builds)."""
    show(args, dry)
    if dry:
        return
    out = subprocess.DEVNULL if quiet else _stream()
    try:
        proc = subprocess.run(
            list(args), timeout=timeout, stdout=out, stderr=_stream(), env=env, cwd=cwd
        )
    except FileNotFoundError as e:
        raise ToolError(f"{args[0]} is not installed ({e})") from e
    except subprocess.TimeoutExpired as e:
        raise ToolError(f"timed out after {timeout:.0f}s: {quote(args)}") from e
    if proc.returncode != 0:
        raise ToolError(f"command failed ({proc.returncode}): {quote(args)}")
