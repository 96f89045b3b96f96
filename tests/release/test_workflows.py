"""The GitHub workflows: thin, fed by docker-bake.hcl, pinned, and checked by actionlint and
zizmor; candidates pushed per platform by digest (no tag) and merged into one tag (registry
faked)."""

from __future__ import annotations

import json
import os
import platform as host_platform
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from invoke.context import Context

from ci import project, workflow
from ci.release import ReleaseError, config, imagetools, publish, signing
from tasks import release as release_tasks

from .factories import digest

WORKFLOWS = project.ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
THIN = re.compile(
    r"^(sudo )?\.venv/bin/(inv|nox) |^sh ci/bootstrap\.sh$|^\.ci/run$"
    r'|^pipx run --spec "invoke>=2\.2" inv '
)
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_the_workflows_are_where_github_reads_them() -> None:
    assert [f.name for f in FILES] == ["ci.yml", "release.yml"]
    assert not (project.ROOT / "ci" / "workflows").exists()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_step_is_a_project_command(path: Path) -> None:
    runs = [m[1] for line in lines(path) if (m := re.match(r"^\s*(?:- )?run: (.*)$", line))]
    assert runs
    for command in runs:
        assert THIN.match(command), f"{path.name}: {command!r} is not an inv/nox command"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_platform_or_python_version_is_written_in_the_yaml(path: Path) -> None:
    text = "\n".join(x for x in lines(path) if not x.lstrip().startswith("#"))
    for p in project.MACHINES:
        assert p not in text
    assert project.python_version() not in text
    assert not re.search(r"python-version: ['\"]?\d", text)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actions_are_pinned_and_credentials_not_kept(path: Path) -> None:
    text = path.read_text()
    uses = re.findall(r"uses: (.*)$", text, re.M)
    assert uses and all(SHA_PIN.match(u) for u in uses), uses
    assert text.count("actions/checkout@") == text.count("persist-credentials: false")
    assert "permissions: {}" in text  # each job asks for what it needs


def test_matrix_comes_from_the_bake_file() -> None:
    m = workflow.matrix(project.platforms())["include"]
    assert [e["platform"] for e in m] == project.platforms()
    by = {e["platform"]: e for e in m}
    assert by["linux/arm64"]["runner"] == "ubuntu-24.04-arm"
    assert not by["linux/arm64"]["emulated"] and not by["linux/amd64"]["emulated"]
    assert not by["linux/386"]["emulated"] and by["linux/386"]["runner"] == "ubuntu-24.04"
    assert by["linux/arm/v7"]["emulated"] and by["linux/arm/v7"]["runner"] == "ubuntu-24.04"


def test_ci_matrix_task_appends_github_outputs(tmp_path: Path) -> None:
    out = tmp_path / "github_output"
    out.write_text("earlier=1\n")
    release_tasks.ci_matrix(Context(), output=str(out))
    got = dict(x.split("=", 1) for x in out.read_text().splitlines())
    assert got["earlier"] == "1" and got["python"] == project.python_version()
    assert '"runner":"ubuntu-24.04-arm"' in got["matrix"]


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable))
    if not found:
        pytest.fail(f"{name} is missing: install the dev extras (sh ci/bootstrap.sh)")
    return found


def broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    root = tmp_path / "repo"
    (root / ".github").mkdir(parents=True)
    shutil.copytree(WORKFLOWS, root / ".github" / "workflows")
    path = root / ".github" / "workflows" / "ci.yml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return root


def test_actionlint_passes_the_workflows_and_fails_a_broken_one(tmp_path: Path) -> None:
    actionlint = _tool("actionlint")
    ok = subprocess.run([actionlint], cwd=project.ROOT, capture_output=True, timeout=120)
    assert ok.returncode == 0, ok.stdout.decode()
    root = broken_copy(tmp_path, "needs: setup\n", "needs: set-up\n")
    files = [str(f) for f in sorted((root / ".github" / "workflows").glob("*.yml"))]
    bad = subprocess.run([actionlint, *files], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "set-up" in bad.stdout, bad.stdout


@pytest.mark.skipif(
    host_platform.machine() != "x86_64", reason="zizmor has glibc wheels for x86_64 only"
)
def test_zizmor_fails_an_unpinned_action(tmp_path: Path) -> None:
    zizmor = _tool("zizmor")
    args = [zizmor, "--offline", "--no-progress", ".github/workflows"]
    ok = subprocess.run(args, cwd=project.ROOT, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout
    pinned = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2"
    root = broken_copy(tmp_path, pinned, "actions/checkout@v4")
    bad = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "unpinned" in bad.stdout, bad.stdout


# --- per-platform pushes by digest, merged into one tag ----------------------------------

CFG = config.load({}, environ={})
BASE_DIGEST = "sha256:" + "b1" * 32


def test_one_platform_is_baked_for_itself_and_named_for_the_candidate() -> None:
    cmd = publish.bake_command(
        CFG,
        "9.9.9-rc.1",
        "default",
        "test",
        metadata=Path("m.json"),
        base="base",
        python=None,
        tarball=Path("t.tar"),
        platform="linux/arm64",
    )
    assert "test.platform=linux/arm64" in cmd
    assert f"test.tags={CFG.image('9.9.9-rc.1', test=True)}" in cmd  # in the tarball only
    assert f"test.args.CANDIDATE={CFG.image('9.9.9-rc.1')}" in cmd
    assert not hasattr(publish, "scratch_tag")
    every = publish.bake_command(
        CFG, "9.9.9-rc.1", "default", "app", metadata=Path("m"), base="b", python=None,
        tarball=Path("t.tar"),
    )  # fmt: skip
    assert f"app.tags={CFG.image('9.9.9-rc.1')}" in every


def test_what_is_pushed_is_a_reproducible_builds_tarball() -> None:
    """Bake writes an OCI tarball with rewritten timestamps (what ``inv build`` and a
    rebuild give), never pushes itself; for every platform at once ``docker load`` and
    ``docker push`` push it under the candidate tag."""
    ref = publish.target_ref(CFG, "9.9.9-rc.1", "app")
    cmd = publish.bake_command(
        CFG, "9.9.9-rc.1", "default", "app", metadata=Path("m"), base="b", python=None,
        tarball=Path("/tmp/x/app.oci.tar"), platform="linux/arm64",
    )  # fmt: skip
    assert "--push" not in cmd and "--no-cache" in cmd  # as a rebuild builds
    assert "app.output=type=oci,dest=/tmp/x/app.oci.tar,rewrite-timestamp=true" in cmd
    assert ref == CFG.image("9.9.9-rc.1") and f"app.tags={ref}" in cmd
    assert publish.push_commands(Path("/tmp/x/app.oci.tar"), ref) == [
        ["docker", "load", "-i", "/tmp/x/app.oci.tar"],
        ["docker", "push", ref],
    ]


@pytest.fixture()
def baked(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """publish() with bake faked (it writes the digest it reports) and the pushes recorded."""
    calls: dict[str, list[Any]] = {"commands": [], "uploads": []}

    def change(cmd: list[str], **_: Any) -> None:
        calls["commands"].append(cmd)
        if cmd[:3] == ["docker", "buildx", "bake"]:
            meta, target = Path(cmd[cmd.index("--metadata-file") + 1]), cmd[-1]
            meta.write_text(json.dumps({target: {"containerimage.digest": digest(target)}}))

    def push(tarball: Path, registry: str, repo: str, *, plain_http: bool) -> str:
        calls["uploads"].append((tarball.name, registry, repo))
        return digest(tarball.name.split(".")[0])

    monkeypatch.setattr(publish.shell, "change", change)
    monkeypatch.setattr(publish, "upload", SimpleNamespace(push=push), raising=False)
    monkeypatch.setattr(publish.imagetools, "exists", lambda ref: False)
    monkeypatch.setattr(publish, "ensure_builder", lambda cfg, dry: "default")
    monkeypatch.setattr(publish, "build_env", lambda: ({}, "base", None))
    monkeypatch.setattr(publish.imagetools, "digest", lambda ref: BASE_DIGEST)
    monkeypatch.setattr(publish, "sbom_generator", lambda cfg, base, dry: "")
    return calls


def test_one_platform_is_pushed_by_digest_and_never_tagged(
    tmp_path: Path, baked: dict[str, list[Any]]
) -> None:
    cfg = CFG.with_overrides(state_dir=tmp_path / "state")
    publish.publish(cfg, tag="9.9.9-rc.1", platform="linux/arm64", digest_dir=tmp_path / "d")
    assert [c[:3] for c in baked["commands"]] == [["docker", "buildx", "bake"]] * 2
    for cmd in baked["commands"]:  # built on the base pinned to its registry's digest
        assert f"*.args.BASE_IMAGE=base@{BASE_DIGEST}" in cmd
    assert not any(c[:2] in (["docker", "push"], ["docker", "load"]) for c in baked["commands"])
    assert baked["uploads"] == [
        ("app.oci.tar", CFG.registry, CFG.repository),
        ("test.oci.tar", CFG.registry, CFG.test_repository),
    ]
    for target in ("app", "test"):
        written = (tmp_path / "d" / f"{target}-arm64.digest").read_text()
        assert written == digest(target) + "\n"


def test_a_push_that_is_not_what_bake_reported_is_refused(
    tmp_path: Path, baked: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish.upload, "push", lambda *a, **k: digest("something else"))
    cfg = CFG.with_overrides(state_dir=tmp_path / "state")
    with pytest.raises(ReleaseError, match="but bake reported"):
        publish.publish(cfg, tag="9.9.9-rc.1", platform="linux/arm64", digest_dir=tmp_path)
    assert not list(tmp_path.glob("*.digest"))


@pytest.fixture()
def created(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(imagetools, "create", lambda t, s, dry: calls.append((t, list(s))))
    return calls


def test_merge_tags_every_platforms_digest(tmp_path: Path, created: list[tuple[Any, ...]]) -> None:
    for p in project.platforms():
        publish.write_digest(tmp_path, "app", p, digest("app " + p))
        publish.write_digest(tmp_path, "test", p, digest("test " + p))
    publish.merge(CFG, "9.9.9-rc.1", tmp_path, dry=True)
    (app_tag, app_src), (test_tag, test_src) = created
    assert app_tag == CFG.image("9.9.9-rc.1") and test_tag == CFG.image("9.9.9-rc.1", test=True)
    repo = f"{CFG.registry}/{CFG.repository}"
    assert app_src == [f"{repo}@{digest('app ' + p)}" for p in project.platforms()]
    assert len(test_src) == len(project.platforms())


def test_merge_refuses_a_missing_platform(tmp_path: Path, created: list[tuple[Any, ...]]) -> None:
    for p in project.platforms()[1:]:
        publish.write_digest(tmp_path, "app", p, digest(p))
    with pytest.raises(ReleaseError, match=f"no app digest .* for {project.platforms()[0]}"):
        publish.merge(CFG, "9.9.9-rc.1", tmp_path, dry=True)
    assert created == []
    with pytest.raises(ReleaseError, match="no digest"):
        publish.write_digest(tmp_path, "app", "linux/amd64", "")


def test_signing_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n")
    with signing.key_from_env("CI_KEY") as key:
        path = Path(key)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert not path.exists()
    monkeypatch.setenv("CI_KEY", "")
    with (
        pytest.raises(ReleaseError, match=r"\$CI_KEY holds no SSH private key"),
        signing.key_from_env("CI_KEY"),
    ):
        pass
