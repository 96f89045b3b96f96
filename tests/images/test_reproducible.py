"""Reproducible builds: what `inv build` passes (the commit's time, rewritten timestamps, an OCI
tarball for the check) and, on the host, `ci/reproducible.py` on a tiny build context through
the same comparison as `inv build --reproducible-check`: equal builds are equal, a file holding
random bytes is named. The real image's check is the command itself (README, release)."""

from __future__ import annotations

import gzip
import importlib.util
import re
import subprocess
import time
from pathlib import Path
from types import ModuleType

import pytest

from ci import build, project, reproducible

EPOCH = "1796305521"  # 2026-12-03T13:45:21Z


def opts(**kw: object) -> build.BuildOptions:
    return build.BuildOptions(platforms=["linux/amd64", "linux/arm64"], **kw)  # type: ignore[arg-type]


def sets(cmd: list[str]) -> list[str]:
    return [cmd[i + 1] for i, x in enumerate(cmd) if x == "--set"]


def test_an_oci_export_rewrites_the_timestamps() -> None:
    oci = sets(build.bake_command(opts(oci=Path("/tmp/x/b1.tar"), no_cache=True), "base", None))
    assert "app.output=type=oci,dest=/tmp/x/b1.tar,rewrite-timestamp=true" in oci
    # the docker driver refuses rewrite-timestamp where it unpacks into the engine's store
    load = sets(build.bake_command(opts(load=True), "base", None))
    assert "app.output=type=docker" in load
    push = sets(build.bake_command(opts(push=True, tag="r/x:1"), "base", None))
    assert "app.output=type=image,push=true" in push
    assert "--no-cache" in build.bake_command(opts(no_cache=True), "base", None)


def test_load_goes_through_an_oci_tarball_and_docker_load(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(build, "check_build", lambda o: None)
    monkeypatch.setattr(build, "resolve_base", lambda mode: ("base", None))
    monkeypatch.setattr(build, "label_env", lambda: {})
    monkeypatch.setattr(build, "_run_logged", lambda cmd, *a: ran.append(cmd) or Done())
    monkeypatch.setattr(build.shell, "change", lambda cmd, **kw: ran.append(cmd))
    build.build(opts(load=True, tag="clickvote:t"))
    (bake, load) = ran
    [out] = [x for x in sets(bake) if x.startswith("app.output=")]
    tar = out.removeprefix("app.output=type=oci,dest=").removesuffix(",rewrite-timestamp=true")
    assert tar.endswith("image.tar") and load == ["docker", "load", "-i", tar]
    assert "app.tags=clickvote:t" in sets(bake) and not Path(tar).exists()  # removed after


class Done:
    returncode = 0


def test_an_oci_export_excludes_load_and_push(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "require_engine", lambda: None)
    with pytest.raises(build.BuildError, match="exclude each other"):
        build.check_build(opts(load=True, oci=Path("/tmp/x.tar")))


def test_created_and_the_epoch_are_the_given_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    monkeypatch.delenv("CREATED", raising=False)
    monkeypatch.setattr(build, "git_revision", lambda: "abc")
    env = build.label_env()
    assert env["CREATED"] == "2026-12-03T13:45:21Z"
    assert "SOURCE_DATE_EPOCH" not in env  # set already: bake reads it from the environment


@pytest.mark.host
def test_the_epoch_is_the_commit_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run([*git, "add", "f"], check=True)
    dated = {"GIT_COMMITTER_DATE": f"@{EPOCH} +0000", "GIT_AUTHOR_DATE": f"@{EPOCH} +0000"}
    subprocess.run([*git, "commit", "-qm", "x"], check=True, env=dated)
    assert build.source_date_epoch(tmp_path) == EPOCH
    with pytest.raises(build.BuildError, match="set SOURCE_DATE_EPOCH"):
        build.source_date_epoch(tmp_path / "f")


def test_the_dockerfile_writes_hash_based_pycs_in_one_order() -> None:
    """What pip installs into /out (the image) is compiled by compileall alone: pip's own pycs
    record the install time (the source's mtime); compileall does not
    replace them, and its workers (-j) would share refcounts in no fixed order."""
    text = (project.ROOT / "docker" / "Dockerfile").read_text()
    steps = [s for s in re.split(r"\n(?=[A-Z]+ )", text) if s.startswith("RUN")]
    installs = [x for s in steps for x in re.findall(r"pip install [^&]*--target /out/", s)]
    assert len(installs) == 3 and all("--no-compile" in x for x in installs), installs
    compiles = [x for s in steps for x in re.findall(r"python3 -m compileall [^&]*", s)]
    assert len(compiles) == 4
    assert all("--invalidation-mode" in x and "hash" in x and "-j" not in x for x in compiles)


def test_the_wheel_and_the_test_tree_see_the_epoch() -> None:
    text = (project.ROOT / "docker" / "Dockerfile").read_text()
    stages = dict(re.findall(r"\nFROM [^\n]* AS (\S+)\n(.*?)(?=\nFROM |\Z)", text, re.S))
    for stage in ("app-build", "test-tree"):
        assert "\nARG SOURCE_DATE_EPOCH\n" in "\n" + stages[stage], stage
    assert 'touch -h -d "@${SOURCE_DATE_EPOCH}"' in stages["test-tree"]
    assert "chmod -R a+rX,u+w,go-w /app" in stages["test-tree"]  # not the checkout's umask
    assert "chmod -R a+rX,u+w,go-w /src" in stages["app-build"]


def load_warm_tests() -> ModuleType:
    path = project.ROOT / "docker" / "warm_tests.py"
    spec = importlib.util.spec_from_file_location("warm_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hypothesis_storage(root: Path, tmp_name: str) -> Path:
    """What hypothesis leaves: a table gzipped under a random temporary name, and more."""
    tables = root / "unicode_data" / "15.1.0"
    tables.mkdir(parents=True)
    with gzip.GzipFile(str(tables / tmp_name), "wb", mtime=1) as f:
        f.write(b'[["Cc", [[0, 31]]]]')
    (tables / tmp_name).rename(tables / "charmap.json.gz")
    (root / "constants").mkdir()
    (root / "constants" / tmp_name[:8]).write_text(f"# file: /usr/local/lib/{tmp_name}.py\n")
    (root / "tmp").mkdir()
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_the_warmed_hypothesis_storage_is_the_same_bytes_in_two_builds(tmp_path: Path) -> None:
    warm = load_warm_tests()
    a = hypothesis_storage(tmp_path / "a", "tmpk2x9_a1b")
    b = hypothesis_storage(tmp_path / "b", "tmp0qz7c3dd")
    assert tree(a) != tree(b)
    warm.stable_storage(a)
    warm.stable_storage(b)
    assert tree(a) == tree(b) and list(tree(a)) == ["unicode_data/15.1.0/charmap.json.gz"]
    table = a / "unicode_data" / "15.1.0" / "charmap.json.gz"
    assert gzip.decompress(table.read_bytes()) == b'[["Cc", [[0, 31]]]]'  # what hypothesis reads


@pytest.mark.host
def test_the_check_builds_the_commit_twice_from_two_checkouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[build.BuildOptions] = []
    monkeypatch.setattr(build, "build", seen.append)
    run = reproducible.bake_build(opts(target="test", load=True))
    for n in (1, 2):
        run(tmp_path / f"build{n}.tar", tmp_path / f"build{n}.log")
    first, second = (o.root for o in seen)
    dockerfile = Path("docker") / "Dockerfile"
    assert (first / dockerfile).read_bytes() == (second / dockerfile).read_bytes()
    commit_time = int(build.source_date_epoch())
    assert (first / "pyproject.toml").stat().st_mtime == commit_time  # as git archive sets it
    assert {p.lstat().st_mtime for p in second.rglob("*")} == {reproducible.OTHER_CHECKOUT}
    assert (first / "pyproject.toml").stat().st_mode & 0o777 == 0o664  # umask 002
    assert (second / "pyproject.toml").stat().st_mode & 0o777 == 0o644  # umask 022
    assert [o.oci for o in seen] == [tmp_path / "build1.tar", tmp_path / "build2.tar"]
    assert all(o.no_cache and not o.load and o.target == "test" for o in seen)


# ----------------------------------------------------------------------------- on the host


def tiny_build(context: Path, rewrite: bool = True) -> reproducible.Build:
    """A one-file context built uncached into an OCI tarball, as the check builds the image."""
    base, _ = build.resolve_base("auto")
    out = "type=oci,dest={dest}" + (f",{build.REWRITE}" if rewrite else "")

    def run(dest: Path, log: Path) -> None:
        cmd = ["docker", "buildx", "build", "--builder", "default", "--no-cache"]
        cmd += ["--platform", "linux/amd64,linux/arm64", "--build-arg", f"BASE={base}"]
        cmd += ["--build-arg", f"SOURCE_DATE_EPOCH={EPOCH}", "--provenance=false"]
        cmd += ["--output", out.format(dest=dest), str(context)]
        with log.open("wb") as f:
            subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=True, timeout=300)
        time.sleep(1.1)  # the second build's files are written in another second

    return run


def context(tmp_path: Path, run: str) -> Path:
    ctx = tmp_path / "context"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"ARG BASE\nFROM $BASE\nCOPY hello /opt/app/hello\nRUN mkdir -p /opt/app/data && {run}\n"
    )
    (ctx / "hello").write_text("hello\n")
    return ctx


@pytest.mark.host
def test_two_builds_of_a_deterministic_context_are_equal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = context(tmp_path, "echo same > /opt/app/data/x")  # written at build time
    assert reproducible.check(tiny_build(ctx), keep=tmp_path / "work")
    out = capsys.readouterr().out
    assert "linux/amd64: equal sha256:" in out and "linux/arm64: equal sha256:" in out
    assert out.rstrip().endswith("reproducible: the image digests are equal")


@pytest.mark.host
def test_without_rewritten_timestamps_the_build_time_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = context(tmp_path, "echo same > /opt/app/data/x")
    assert not reproducible.check(tiny_build(ctx, rewrite=False), keep=tmp_path / "work")
    out = capsys.readouterr().out
    assert re.search(r"\n    /opt/app\S*: mtime 2026-", out)  # the time of each build
    assert ": content " not in out and "NOT reproducible" in out


@pytest.mark.host
def test_a_file_of_random_bytes_is_named_with_its_layer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = context(tmp_path, "head -c 16 /dev/urandom > /opt/app/data/stamp")
    assert not reproducible.check(tiny_build(ctx))
    out = capsys.readouterr().out
    for platform in ("linux/amd64", "linux/arm64"):
        assert f"{platform}: DIFFERENT sha256:" in out
    assert "first differing layer:" in out
    assert "/opt/app/data/stamp: content sha256:" in out
    assert "/opt/app/hello" not in out  # the same in both builds
    assert out.rstrip().endswith("NOT reproducible")


def test_the_version_without_sources(tmp_path: Path) -> None:
    """Where the tree has no clickvote/ (the test image), the installed package's version."""
    import clickvote

    assert build.app_version(tmp_path) == clickvote.__version__
    (tmp_path / "clickvote").mkdir()
    (tmp_path / "clickvote" / "__init__.py").write_text('__version__ = "9.8.7"\n')
    assert build.app_version(tmp_path) == "9.8.7"
