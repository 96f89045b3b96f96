"""Developer and CI tasks (``inv --list``): thin wrappers over ``ci/``, one module per concern.

``setup`` (host provisioning, the offline base image), ``build`` (the multi-platform images),
``bench`` (benchmarks), ``release`` (registry, candidates, manifest lists, verification,
promotion; logic in ``ci/release/``). Task names are flat: ``inv build``, ``inv promote``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from invoke.collection import Collection

HERE = Path(__file__).resolve().parent
# invoke puts this folder itself on sys.path, where our module names (setup, build...) would
# shadow top-level ones; the tasks import ci/ and benchmarks/ from the checkout instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from tasks import bench, build, release, setup  # noqa: E402

ns = Collection(*setup.TASKS, *build.TASKS, *bench.TASKS, *release.TASKS)
