"""No function in clickvote/ or ci/ is longer than 80 lines (nested ones counted on their own):
a longer one is split into named steps."""

from __future__ import annotations

import ast
from pathlib import Path

import ci
import clickvote

LIMIT = 80
TREES = (Path(clickvote.__file__).parent, Path(ci.__file__).parent)
Function = ast.FunctionDef | ast.AsyncFunctionDef


def too_long(source: str, name: str) -> list[str]:
    """``name:line function (n lines)`` for each function of ``source`` over LIMIT lines."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, Function) and node.end_lineno is not None:
            lines = node.end_lineno - node.lineno + 1
            if lines > LIMIT:
                found.append(f"{name}:{node.lineno} {node.name} ({lines} lines)")
    return found


def function(name: str, lines: int, indent: str = "") -> str:
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(lines - 2))
    return f"{indent}def {name}():\n{body}{indent}    return 0\n"


def test_the_check_counts_lines_nested_functions_too() -> None:
    assert too_long(function("f", LIMIT), "m.py") == []
    assert too_long(function("f", LIMIT + 1), "m.py") == [f"m.py:1 f ({LIMIT + 1} lines)"]
    method = "class A:\n    async def f(self):\n" + function("g", LIMIT + 1, " " * 8)
    assert too_long(method, "m.py") == [
        f"m.py:2 f ({LIMIT + 2} lines)",
        f"m.py:3 g ({LIMIT + 1} lines)",
    ]


def test_no_function_over_the_limit() -> None:
    files = [p for tree in TREES for p in sorted(tree.rglob("*.py"))]
    assert len(files) > 20
    found = [hit for p in files for hit in too_long(p.read_text(encoding="utf-8"), str(p))]
    assert found == []
