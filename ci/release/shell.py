"""Running external commands with timeouts, echo and ``--dry`` support."""

from __future__ import annotations

import io
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence

from ci.release import ReleaseError

DEFAULT_TIMEOUT = 600.0


def quote(args: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(
    args: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    stdin: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command, capture its output; raise ReleaseError on failure if ``check``."""
    try:
        proc = subprocess.run(list(args), input=stdin, capture_output=True, timeout=timeout)
    except FileNotFoundError as e:
        raise ReleaseError(f"{args[0]} is not installed ({e})") from e
    except subprocess.TimeoutExpired as e:
        raise ReleaseError(f"timed out after {timeout:.0f}s: {quote(args)}") from e
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise ReleaseError(f"command failed ({proc.returncode}): {quote(args)}\n{err}")
    return proc


def _stream() -> int | None:
    """Our stderr's file descriptor; None (inherit) where it has none (pytest capture)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, io.UnsupportedOperation):
        return None


def text(args: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> str:
    return run(args, timeout=timeout).stdout.decode()


def change(
    args: Sequence[str],
    *,
    dry: bool,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run a state-changing command, streaming its output; with ``dry`` only print it."""
    echo(("[dry] " if dry else "$ ") + quote(args))
    if dry:
        return
    try:
        proc = subprocess.run(
            list(args), timeout=timeout, stdout=_stream(), env=env, stderr=_stream()
        )
    except FileNotFoundError as e:
        raise ReleaseError(f"{args[0]} is not installed ({e})") from e
    except subprocess.TimeoutExpired as e:
        raise ReleaseError(f"timed out after {timeout:.0f}s: {quote(args)}") from e
    if proc.returncode != 0:
        raise ReleaseError(f"command failed ({proc.returncode}): {quote(args)}")
