"""Install the published @clickvote/react client (npm ci, cached) and bundle app.jsx with esbuild.

    python tests/web/react/build.py [--cache DIR] [--out DIR]

Prints the output directory holding app.js and app.css. Needs node and npm; runs no invoke task.
The npm cache dir is keyed by the lockfile's hash, so an unchanged lockfile installs only once.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the repository, when run as a script
from ci import npm  # noqa: E402

FILES = ("package.json", "package-lock.json", ".npmrc")
BUNDLE_TIMEOUT = 120


def install(cache: Path) -> Path:
    """npm ci into <cache>/react-<hash>; returns that directory."""
    return npm.install(HERE, FILES, "react", cache)


def bundle(work: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(HERE / "app.jsx", work / "app.jsx")
    if shutil.which("node") is None:
        raise RuntimeError("node is not installed")
    # bin/esbuild is the native binary or a node shim with a shebang: run it as it is
    esbuild = work / "node_modules" / "esbuild" / "bin" / "esbuild"
    subprocess.run(
        [
            str(esbuild),
            "app.jsx",
            "--bundle",
            "--format=iife",
            "--jsx=automatic",
            "--minify",
            "--log-level=error",
            '--define:process.env.NODE_ENV="production"',
            f"--outfile={out / 'app.js'}",
        ],
        cwd=work,
        check=True,
        timeout=BUNDLE_TIMEOUT,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, default=npm.cache_root())
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    work = install(args.cache)
    out = bundle(work, args.out or work / "dist")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
