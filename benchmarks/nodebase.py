"""The Node socket.io baseline (benchmarks/node/server.js): installed with `npm ci` from its
lockfile into a cache directory keyed by the files' hash (so once per lockfile), and run.

Needs node and npm (`inv setup` installs them); npm uses the registry it is configured for.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent / "node"
FILES = ("package.json", "package-lock.json", ".npmrc", "server.js")
INSTALL_TIMEOUT = 600


def cache_root() -> Path:
    # the same cache as the browser tests' npm install (tests/web/react/build.py)
    base = os.environ.get("CLICKVOTE_NPM_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(base) if base else Path.home() / ".cache" / "clickvote"


def files_hash() -> str:
    h = hashlib.sha256()
    for name in FILES:
        h.update((HERE / name).read_bytes())
    return h.hexdigest()[:16]


def install(cache: Path | None = None) -> Path:
    """`npm ci` into <cache>/node-baseline-<hash> unless done; returns that directory."""
    work = (cache or cache_root()) / f"node-baseline-{files_hash()}"
    marker = work / "node_modules" / ".clickvote-ok"
    if marker.exists():
        return work
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("node and npm are needed for the Node baseline (inv setup)")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for name in FILES:
        shutil.copy2(HERE / name, work / name)
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=work,
        check=True,
        timeout=INSTALL_TIMEOUT,
        stdout=subprocess.DEVNULL,
    )
    marker.write_text("ok\n")
    return work


def command(port: int) -> list[str]:
    """The command line serving the baseline on 127.0.0.1:`port` (installing it first)."""
    node = shutil.which("node")
    assert node is not None
    return [node, str(install() / "server.js"), str(port)]
