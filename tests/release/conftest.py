"""Release tests need a checkout (ci/release and docker/docker-bake.hcl); inside the test
image, which carries only part of the tree, they are not collected."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

NEEDED = (ROOT / "ci" / "release" / "__init__.py", ROOT / "docker" / "docker-bake.hcl")

if all(p.exists() for p in NEEDED):
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    collect_ignore_glob: list[str] = []
else:
    collect_ignore_glob = ["test_*.py"]
