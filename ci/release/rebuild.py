"""A candidate's platform image rebuilt from the commit its provenance names, for ``inv verify``.

The commit is BuildKit's provenance of the candidate (``metadata."https://mobyproject.org/
buildkit@v1#metadata".vcs.revision``); its ``git archive`` is built in a temporary directory,
uncached, for the platform verified, into an OCI tarball with rewritten timestamps (as
``inv build`` and ``inv publish`` build), with the version, revision and ``SOURCE_DATE_EPOCH``
of that commit. The report's ``rebuild`` section (judged by ``ci/release/quorum.py``):
``{rebuilt: true, commit, pulled, rebuilt_digest, equal}``, or ``{rebuilt: false, reason}``
(``--no-rebuild REASON``, a device without a checkout, a failed rebuild). The base is the
one the candidate was built on where its provenance names it by digest (``inv publish`` pins
a registry base), else what ``CLICKVOTE_BASE`` chooses, as publish chose (the offline base).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ci import build as images
from ci import imagediff, reproducible, shell
from ci.release import ReleaseError
from ci.release.config import ReleaseConfig

BUILDKIT_METADATA = "https://mobyproject.org/buildkit@v1#metadata"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def provenance_commit(provenance: Any, platform: str) -> str:
    """The commit in ``docker buildx imagetools inspect --format '{{json .Provenance}}'``
    output: ``{platform: {SLSA: ...}}`` for several platforms, ``{SLSA: ...}`` for one."""
    doc = provenance.get(platform, provenance) if isinstance(provenance, Mapping) else {}
    slsa = doc.get("SLSA") if isinstance(doc, Mapping) else None
    meta = slsa.get("metadata") if isinstance(slsa, Mapping) else None
    buildkit = meta.get(BUILDKIT_METADATA) if isinstance(meta, Mapping) else None
    vcs = buildkit.get("vcs") if isinstance(buildkit, Mapping) else None
    revision = vcs.get("revision") if isinstance(vcs, Mapping) else None
    if not isinstance(revision, str) or not revision:
        raise ReleaseError(f"the candidate's {platform} provenance names no commit (vcs.revision)")
    if not _COMMIT.match(revision):
        raise ReleaseError(f"the candidate's {platform} provenance names {revision!r}, no commit")
    return revision


def provenance_base(provenance: Any, platform: str) -> str | None:
    """The base image the candidate's build was given (its ``BASE_IMAGE`` build argument:
    SLSA v0.2's ``invocation.parameters.args``, v1's ``buildDefinition.externalParameters.
    request.args``; ``--provenance=mode=max`` records them), or None where none is recorded."""
    doc = provenance.get(platform, provenance) if isinstance(provenance, Mapping) else {}
    slsa = doc.get("SLSA") if isinstance(doc, Mapping) else None
    for path in (("invocation", "parameters", "args"),
                 ("buildDefinition", "externalParameters", "request", "args")):  # fmt: skip
        node: Any = slsa
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        base = node.get("build-arg:BASE_IMAGE") if isinstance(node, Mapping) else None
        if isinstance(base, str) and base:
            return base
    return None


def candidate_provenance(cfg: ReleaseConfig, tag: str) -> Any:
    """``docker buildx imagetools inspect --format '{{json .Provenance}}'`` of the candidate."""
    ref = cfg.image(tag)
    proc = shell.run(
        ["docker", "buildx", "imagetools", "inspect", ref, "--format", "{{json .Provenance}}"],
        check=False,
    )
    try:
        provenance = json.loads(proc.stdout) if proc.returncode == 0 else None
    except ValueError:
        provenance = None
    if provenance is None:
        raise ReleaseError(f"no provenance of {ref}: {proc.stderr.decode(errors='replace')[-300:]}")
    return provenance


def rebuild_base(recorded: str | None) -> str:
    """The base a rebuild uses: the one the candidate was built on where its provenance names
    it by digest (``inv publish`` pins a registry base), else ``CLICKVOTE_BASE`` (``auto``:
    the registry base if reachable, else the offline base, as ``inv publish`` chose)."""
    if recorded is not None and images.is_pinned(recorded):
        return recorded
    return os.environ.get("CLICKVOTE_BASE", "auto")


def section(commit: str, pulled: str, rebuilt: str) -> dict[str, Any]:
    return {
        "rebuilt": True,
        "commit": commit,
        "pulled": pulled,
        "rebuilt_digest": rebuilt,
        "equal": rebuilt == pulled,
    }


def not_rebuilt(reason: str, commit: str = "") -> dict[str, Any]:
    return {"rebuilt": False, "reason": reason, **({"commit": commit} if commit else {})}


def commit_env(src: Path, commit: str, epoch: str) -> dict[str, str]:
    """The bake variables behind the labels for ``commit`` exported to ``src`` (``label_env``
    reads them from the checkout, which is another commit)."""
    return {
        "VERSION": images.app_version(src),
        "REVISION": commit,
        "CREATED": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch))),
        "SOURCE_DATE_EPOCH": epoch,
    }


def commit_time(root: Path, commit: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(root), "log", "-1", "--format=%ct", commit],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not proc.stdout.strip().isdigit():
        raise ReleaseError(f"commit {commit} is not in {root} (git fetch it): {proc.stderr[-300:]}")
    return proc.stdout.strip()


def build(commit: str, platform: str, work: Path, root: Path = images.ROOT, base: str = "") -> str:
    """Rebuild the app image of ``commit`` for ``platform`` in ``work`` on ``base`` (default:
    ``rebuild_base(None)``, as ``inv publish`` chose); its digest."""
    epoch = commit_time(root, commit)
    src = reproducible.export(root, work / "src", commit=commit)
    tar, log = work / "rebuild.oci.tar", work / "rebuild.log"
    opts = images.BuildOptions(
        platforms=[platform],
        target="app",
        root=src,
        no_cache=True,
        progress="plain",
        oci=tar,
        log=log,
        env=commit_env(src, commit, epoch),
        base=base or rebuild_base(None),
    )
    shell.echo(f"rebuilding {commit[:12]} for {platform} on {opts.base} (log: {log})")
    try:
        images.build(opts)
    except shell.ToolError as e:
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        raise ReleaseError(f"the rebuild of {commit[:12]} failed: {e}\n{tail}") from e
    layout = imagediff.Layout(tar)
    try:
        digest = imagediff.platform_images(layout).get(platform)
    finally:
        layout.close()
    if digest is None:
        raise ReleaseError(f"the rebuild of {commit[:12]} wrote no {platform} image")
    return digest


def run(cfg: ReleaseConfig, tag: str, platform: str, pulled: str) -> dict[str, Any]:
    """The report's ``rebuild`` section; what keeps the rebuild from happening is recorded
    as its reason (the report then counts only where no rebuild is required)."""
    try:
        provenance = candidate_provenance(cfg, tag)
        commit = provenance_commit(provenance, platform)
    except ReleaseError as e:
        return not_rebuilt(str(e))
    base = rebuild_base(provenance_base(provenance, platform))
    try:
        with tempfile.TemporaryDirectory(prefix="clickvote-rebuild-") as tmp:
            rebuilt = build(commit, platform, Path(tmp), base=base)
    except ReleaseError as e:
        shell.echo(f"warning: {e}")
        return not_rebuilt(str(e).split("\n")[0][:300], commit)
    shell.echo(f"rebuilt {rebuilt} ({'equal' if rebuilt == pulled else 'NOT equal'} to {pulled})")
    return section(commit, pulled, rebuilt)
