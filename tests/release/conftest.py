"""Release tests need a checkout (ci/release and docker/docker-bake.hcl); inside the test
image, which carries only part of the tree, they are not collected. Tests of the invoke
tasks and of the GitHub workflows need invoke, a development tool the images do not carry,
the tasks/ package and the workflows themselves."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

NEEDED = (ROOT / "ci" / "release" / "__init__.py", ROOT / "docker" / "docker-bake.hcl")

if all(p.exists() for p in NEEDED):
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    collect_ignore_glob: list[str] = []
    if importlib.util.find_spec("invoke") is None or not (ROOT / "tasks").is_dir():
        collect_ignore_glob += ["test_promote_rules.py", "test_tasks_*.py", "test_workflows.py"]
    if not (ROOT / ".github" / "workflows").is_dir():  # the images carry no workflows
        collect_ignore_glob.append("test_workflows.py")
else:
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty docker client configuration (DOCKER_CONFIG) of the test's own: what `docker
    login` stored, as the test writes it, never the machine's."""
    home = tmp_path / "docker-config"
    home.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(home))
    return home
