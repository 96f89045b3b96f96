"""`npm ci` of a small package folder of the project's (its package.json, lockfile, .npmrc and
whatever else it needs) into a cache directory keyed by those files' hash, so an unchanged
lockfile installs once. npm uses the registry it is configured for. Used by the browser tests'
React client (tests/web/react/build.py) and the Node baseline (benchmarks/nodebase.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

INSTALL_TIMEOUT = 600


def cache_root() -> Path:
    base = os.environ.get("CLICKVOTE_NPM_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(base) if base else Path.home() / ".cache" / "clickvote"


def files_hash(src: Path, files: Sequence[str]) -> str:
    h = hashlib.sha256()
    for name in files:
        h.update((src / name).read_bytes())
    return h.hexdigest()[:16]


def install(src: Path, files: Sequence[str], name: str, cache: Path | None = None) -> Path:
    """`npm ci` of `files` from `src` into <cache>/<name>-<hash> unless done; that directory."""
    work = (cache or cache_root()) / f"{name}-{files_hash(src, files)}"
    marker = work / "node_modules" / ".clickvote-ok"
    if marker.exists():
        return work
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("node and npm are needed (inv setup installs them)")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for f in files:
        shutil.copy2(src / f, work / f)
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=work,
        check=True,
        timeout=INSTALL_TIMEOUT,
        stdout=subprocess.DEVNULL,
    )
    marker.write_text("ok\n")
    return work
