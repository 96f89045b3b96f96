"""The test image's tree (docker/Dockerfile, stage test-tree): of benchmarks/ only the load
generator the release figures run; what the suite drives a server with is in the package
(clickvote/client.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from . import conftest

ROOT = Path(__file__).resolve().parents[2]


def test_test_tree_copies_only_the_load_generator_of_benchmarks() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    stage = dockerfile.split("AS test-tree", 1)[1].split("\nFROM ", 1)[0]
    assert "COPY tests " in stage
    copied = re.findall(r"^COPY (.*benchmarks.*) /app/benchmarks/$", stage, re.M)
    assert copied == ["benchmarks/__init__.py benchmarks/loadgen.py"], copied
    assert '"benchmarks.loadgen"' in (ROOT / "ci" / "release" / "figures.py").read_text()


def importers_of_benchmarks() -> list[str]:
    """Test modules importing benchmarks/ when collected (imports inside functions aside)."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            if any(n == "benchmarks" or n.startswith("benchmarks.") for n in names):
                found.append(str(path.relative_to(ROOT)))
    return found


def test_only_ignored_host_tests_import_benchmarks() -> None:
    assert importers_of_benchmarks() == ["tests/images/test_bench_lean.py"]
    assert conftest.collect_ignore == ([] if conftest.LEAN.exists() else ["test_bench_lean.py"])
