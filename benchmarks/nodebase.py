"""The Node socket.io baseline (benchmarks/node/server.js): installed with `npm ci` from its
lockfile into a cache directory keyed by the files' hash (so once per lockfile), and run.

Needs node and npm (`inv setup` installs them); npm uses the registry it is configured for.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ci import npm

HERE = Path(__file__).resolve().parent / "node"
FILES = ("package.json", "package-lock.json", ".npmrc", "server.js")


def install(cache: Path | None = None) -> Path:
    """`npm ci` into <cache>/node-baseline-<hash> unless done; returns that directory."""
    return npm.install(HERE, FILES, "node-baseline", cache)


def command(port: int) -> list[str]:
    """The command line serving the baseline on 127.0.0.1:`port` (installing it first)."""
    node = shutil.which("node")
    assert node is not None
    return [node, str(install() / "server.js"), str(port)]
