"""Candidate tag names: ``<version>-rc.<n>`` or ``rc-<git sha>``."""

from __future__ import annotations

import ast
import importlib.metadata
import re
from collections.abc import Callable, Iterable

from ci import project, shell
from ci.release import ReleaseError
from ci.release.config import ReleaseConfig

MAX_RC = 999


def app_version() -> str:
    """``__version__`` from clickvote/__init__.py, read without importing the app (outside
    a checkout: the installed distribution's version)."""
    source = project.ROOT / "clickvote" / "__init__.py"
    if not source.exists():
        return importlib.metadata.version("clickvote")
    tree = ast.parse(source.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return value
    raise ReleaseError("clickvote/__init__.py has no __version__ string")


def rc_pattern(fmt: str, version: str) -> re.Pattern[str]:
    head, _, tail = fmt.format(version=version, n="\0").partition("\0")
    return re.compile(re.escape(head) + r"(\d+)" + re.escape(tail) + "$")


def next_rc(fmt: str, version: str, existing: Iterable[str]) -> int:
    """One more than the highest rc number among ``existing`` tags (1 if none)."""
    pattern = rc_pattern(fmt, version)
    numbers = [int(m.group(1)) for t in existing if (m := pattern.match(t))]
    return max(numbers, default=0) + 1


def rc_tag(cfg: ReleaseConfig, version: str, n: int) -> str:
    return cfg.candidate_format.format(version=version, n=n)


def sha_tag(cfg: ReleaseConfig, sha: str) -> str:
    return cfg.sha_format.format(sha=sha)


def git_sha(short: int = 12) -> str:
    sha = shell.text(["git", "-C", str(project.ROOT), "rev-parse", "HEAD"]).strip()
    return sha[:short]


def git_dirty() -> bool:
    out = shell.text(
        ["git", "-C", str(project.ROOT), "status", "--porcelain", "--untracked-files=no"]
    )
    return bool(out.strip())


def probe_rc(cfg: ReleaseConfig, version: str, exists: Callable[[str], bool]) -> int:
    """Next free rc number by asking for each tag (registries without a tag list)."""
    for n in range(1, MAX_RC + 1):
        if not exists(rc_tag(cfg, version, n)):
            return n
    raise ReleaseError(f"more than {MAX_RC} candidates of {version}: bump the version")
