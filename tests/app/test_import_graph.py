"""No two modules of clickvote/ import each other, directly or round a loop (an import inside a
function counts too: it only delays the loop)."""

from __future__ import annotations

import ast
from pathlib import Path

import clickvote

ROOT = Path(clickvote.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The clickvote modules that `path` imports, wherever in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found & modules


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    names = set(paths)
    return {name: imports(path, names) - {name} for name, path in paths.items()}


def cycle(edges: dict[str, set[str]]) -> list[str]:
    """One loop of imports (empty: none)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        path.append(name)
        for nxt in sorted(edges[name]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[name] = 2
        return []

    for name in sorted(edges):
        if name not in state and (found := visit(name)):
            return found
    return []


def test_the_graph_sees_the_imports_it_should() -> None:
    edges = graph()
    assert "clickvote.fanout" in edges["clickvote.context"]
    assert "clickvote.fanout_redis" in edges["clickvote.context"]  # imported inside a function
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_clickvote_has_no_import_cycle() -> None:
    assert cycle(graph()) == []
