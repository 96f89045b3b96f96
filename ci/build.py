"""Image builds: the offline base image and ``docker buildx bake`` invocations.

Used by tasks/ (``inv base``, ``inv build``), noxfile.py (``test-<arch>``)
and benchmarks/build.py, so that all of them build the same way.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ci import basepkgs, host, project, shell, space
from ci import rootfs as rootfs_files
from ci.shell import ToolError

ROOT = project.ROOT
DOCKERFILE = ROOT / "docker" / "Dockerfile"
BASE_DOCKERFILE = ROOT / "docker" / "base.Dockerfile"
BASE_WORKDIR = Path(os.environ.get("CLICKVOTE_BASE_WORKDIR", "/var/tmp/clickvote-base"))
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
# Trimmed from every root file system: caches and documentation.
STRIP = [
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/cache/debconf/templates.dat-old",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "var/log",
]
PYTHON_LABEL = "org.clickvote.python.version"
# Exporter option: the layers' timestamps clamped to SOURCE_DATE_EPOCH. BuildKit refuses it
# where its exporter also unpacks into the engine's store ("conflicts with unpack"), as the
# docker driver's image and docker exporters (--load, --push) do: OCI tarballs only.
REWRITE = "rewrite-timestamp=true"


BuildError = ToolError  # a failed precondition or build; the message says what to do


# --------------------------------------------------------------------------- engine checks


def require_engine() -> None:
    if not host.engine_answers():
        raise BuildError("no Docker engine answers: run `inv setup` (starts dockerd)")
    if host.output(["docker", "buildx", "version"]) is None:
        raise BuildError("docker buildx is missing: run `inv setup` (installs docker-buildx)")


def require_emulation(platforms: Iterable[str]) -> None:
    """Every non-native platform needs its binfmt handler (with the F flag)."""
    for name, platform in host.binfmt_handlers().items():
        if platform in platforms and not host.handler_ok(host.binfmt_handler(name)):
            raise BuildError(
                f"binfmt handler {name} for {platform} is missing or lacks the F flag: "
                "run `inv setup` (qemu-user-static, update-binfmts --enable)"
            )


def image_present(ref: str) -> bool:
    return host.output(["docker", "image", "inspect", "--format", "{{.Id}}", ref]) is not None


def image_label(ref: str, label: str) -> str | None:
    fmt = "{{index .Config.Labels " + f'"{label}"' + "}}"
    out = host.output(["docker", "image", "inspect", "--format", fmt, ref])
    return out.strip() if out and out.strip() != "<no value>" else None


# --------------------------------------------------------------------------- base image


def _workdir(suite: str) -> Path:
    """One directory per Debian suite: a root file system of another suite is never reused."""
    return BASE_WORKDIR / suite


def _rootfs_tar(arch: str, suite: str) -> Path:
    return _workdir(suite) / f"rootfs-{arch}.tar"


def _debootstrap_cmd(platform: str, rootfs: Path, suite: str, mirror: str) -> list[str]:
    return [
        "debootstrap",
        f"--arch={project.DEBIAN_ARCH[platform]}",
        "--variant=minbase",
        f"--include={BASE_PACKAGES}",
        suite,
        str(rootfs),
        mirror,
    ]


def _epoch_file(tar: Path) -> Path:
    return tar.with_suffix(".epoch")


def _strip_and_tar(rootfs: Path, tar: Path) -> None:
    """Strip caches, make the root reproducible (``ci/rootfs.py``) and tar it."""
    epoch = rootfs_files.release_epoch(rootfs) or int(source_date_epoch())
    rootfs_files.normalize(rootfs, epoch)
    for rel in STRIP:
        target = rootfs / rel
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    partial = tar.with_suffix(".tar.part")
    rootfs_files.write_tar(rootfs, partial, epoch)
    _epoch_file(tar).write_text(f"{epoch}\n")
    partial.rename(tar)
    shutil.rmtree(rootfs)


def _python_version(rootfs_tar: Path) -> str:
    """``3.11`` from the python3 symlink inside a root file system tarball."""
    out = subprocess.run(
        ["tar", "-tvf", str(rootfs_tar), "./usr/bin/python3"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"-> python(\d+\.\d+)", out)
    if not m:
        raise BuildError(f"no /usr/bin/python3 in {rootfs_tar}")
    return m[1]


def _bootstrapped(rootfs: Path) -> bool:
    """A finished debootstrap (it removes its own work directory at the end)."""
    return (rootfs / "usr/bin/python3").exists() and not (rootfs / "debootstrap").exists()


def debootstrap_all(platforms: Sequence[str], suite: str, dry: bool) -> None:
    """One debootstrap per platform, in parallel; skips those already tarred."""
    mirror = host.apt_mirror()
    work = _workdir(suite)
    todo = [p for p in platforms if not _rootfs_tar(project.arch_name(p), suite).exists()]
    procs: list[tuple[str, Path, subprocess.Popen[bytes] | None]] = []
    for platform in todo:
        arch = project.arch_name(platform)
        rootfs = work / f"rootfs-{arch}"
        if _bootstrapped(rootfs):
            procs.append((arch, rootfs, None))
            continue
        cmd = _debootstrap_cmd(platform, rootfs, suite, mirror)
        shell.show(cmd, dry)
        if dry:
            continue
        shutil.rmtree(rootfs, ignore_errors=True)
        log = (work / f"debootstrap-{arch}.log").open("wb")
        procs.append((arch, rootfs, subprocess.Popen(cmd, stdout=log, stderr=log)))
    for arch, rootfs, proc in procs:
        if proc is not None and proc.wait() != 0:
            raise BuildError(f"debootstrap for {arch} failed: see {work}/debootstrap-{arch}.log")
        _strip_and_tar(rootfs, _rootfs_tar(arch, suite))
        shell.echo(f"ok: {_rootfs_tar(arch, suite)}")


def _base_epoch(tars: Sequence[Path]) -> str:
    """The newest epoch the root file systems were tarred with (a tarball of an earlier
    ``inv base`` has none recorded: its newest mtime, then recorded)."""
    for tar in tars:
        if not _epoch_file(tar).is_file():
            _epoch_file(tar).write_text(f"{rootfs_files.newest_mtime(tar)}\n")
    return str(max(int(_epoch_file(tar).read_text()) for tar in tars))


def base_packages(
    platforms: Sequence[str], suite: str, *, record: bool = False, strict: bool = False
) -> bool:
    """Record the roots' Debian packages (``record``) or compare them with the record
    (``ci/basepkgs.py``; ``strict``: a difference is an error). True: as recorded."""
    tars = {project.arch_name(p): _rootfs_tar(project.arch_name(p), suite) for p in platforms}
    if record:
        basepkgs.write(tars, suite)
        return True
    return basepkgs.compare(tars, suite, strict)


def build_base(
    platforms: Sequence[str],
    ref: str,
    suite: str,
    dry: bool,
    record: bool = False,
    strict: bool = False,
) -> None:
    """Build the multi-platform base image ``ref`` from debootstrap root file systems, and
    compare their packages with docker/base-packages/ (``record``: write it)."""
    if not dry:
        require_engine()
        require_emulation(platforms)
        _workdir(suite).mkdir(parents=True, exist_ok=True)
    if not dry and image_present(ref):
        shell.echo(f"ok: base image {ref} present")
        base_packages(platforms, suite, record=record, strict=strict)
        return
    space.ensure_build_space(dry)
    debootstrap_all(platforms, suite, dry)
    if not dry:
        base_packages(platforms, suite, record=record, strict=strict)
    first = _rootfs_tar(project.arch_name(platforms[0]), suite)
    pyver = "?" if dry else _python_version(first)
    epoch = _base_epoch([_rootfs_tar(project.arch_name(p), suite) for p in platforms])
    # Timestamps are rewritten in an OCI tarball only (REWRITE), which `docker load` loads
    # with its digests; outside the build context, which holds the root file systems.
    oci = BASE_WORKDIR / f"base-{suite}.oci.tar"
    cmd = [
        "docker",
        "buildx",
        "build",
        "--builder",
        "default",
        "--platform",
        ",".join(platforms),
        "-f",
        str(BASE_DOCKERFILE),
        "-t",
        ref,
        "--build-arg",
        f"SOURCE_DATE_EPOCH={epoch}",
        "--provenance=false",  # its build times would make every index digest new
        "--output",
        f"type=oci,dest={oci},{REWRITE}",
        "--label",
        f"{PYTHON_LABEL}={pyver}",
        "--label",
        f"org.opencontainers.image.title=ClickVote base ({suite}, debootstrap)",
        str(_workdir(suite)),
    ]
    shell.change(cmd, dry=dry, timeout=None)
    shell.change(["docker", "load", "-i", str(oci)], dry=dry, timeout=None)
    if not dry:
        oci.unlink()


# --------------------------------------------------------------------------- app images


@dataclass
class BuildOptions:
    platforms: list[str]
    target: str = "app"
    load: bool = False
    push: bool = False
    tag: str = ""
    base: str = "auto"
    dry: bool = False
    print_config: bool = False
    progress: str = "auto"
    builder: str = ""
    no_cache: bool = False
    extra_set: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    root: Path = ROOT  # build context / working directory (benchmarks use a copy)
    log: Path | None = None  # also write the build's output here
    oci: Path | None = None  # export to this OCI layout tarball (not the image store)


def parse_platforms(spec: str) -> list[str]:
    """``amd64,armv7`` / ``all`` / ``linux/arm64`` -> platforms, in the bake file's order."""
    known = project.arches()
    wanted: set[str] = set()
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        if item == "all":
            wanted.update(known.values())
        elif item in known:
            wanted.add(known[item])
        elif item in known.values():
            wanted.add(item)
        else:
            raise BuildError(
                f"unknown platform {item!r}: use one of {', '.join([*known, 'all'])} "
                "(comma-separated)"
            )
    if not wanted:
        raise BuildError("no platform given")
    return [p for p in project.platforms() if p in wanted]


def _registry_reachable(ref: str, timeout: float = 15) -> bool:
    cmd = ["docker", "buildx", "imagetools", "inspect", "--raw", ref]
    return host.output(cmd, timeout=timeout) is not None


PINNED = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")


def is_pinned(ref: str) -> bool:
    """``ref`` names its image by digest (``name[:tag]@sha256:...``): what it names can't move."""
    return bool(PINNED.match(ref))


def resolve_base(mode: str) -> tuple[str, str | None]:
    """(base image, its Python version if known) for ``--base auto|local|registry``, or a
    base named by digest (``NAME@sha256:...``: a candidate's pinned registry base), as given."""
    registry_ref = project.base_image()
    local_ref = project.local_base_image()
    if is_pinned(mode):
        return mode, None
    if mode not in ("auto", "local", "registry"):
        raise BuildError(
            f"--base must be auto, local, registry or an image named by digest "
            f"(NAME@sha256:...), not {mode!r}"
        )
    if mode == "registry" or (
        mode == "auto" and (image_present(registry_ref) or _registry_reachable(registry_ref))
    ):
        return registry_ref, None
    if not image_present(local_ref):
        why = "" if mode == "local" else f"{registry_ref} cannot be pulled and "
        raise BuildError(f"{why}the local base {local_ref} is missing: run `inv base`")
    return local_ref, image_label(local_ref, PYTHON_LABEL)


def git_revision() -> str:
    out = host.output(["git", "-C", str(ROOT), "rev-parse", "HEAD"])
    return out.strip() if out else ""


def source_date_epoch(root: Path = ROOT) -> str:
    """``SOURCE_DATE_EPOCH`` if set, else the time of the commit checked out (``git log``)."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return os.environ["SOURCE_DATE_EPOCH"]
    out = host.output(["git", "-C", str(root), "log", "-1", "--format=%ct"])
    if not out or not out.strip().isdigit():
        raise BuildError(f"no git commit in {root}: set SOURCE_DATE_EPOCH (seconds since 1970)")
    return out.strip()


def app_version(root: Path = ROOT) -> str:
    """The version in ``root``'s clickvote/__init__.py; the installed package's where there
    are no sources (the test image has the tests and ci/, the package in site-packages)."""
    path = root / "clickvote" / "__init__.py"
    if not path.exists():
        import clickvote

        return clickvote.__version__
    ns: dict[str, str] = {}
    exec(path.read_text(), ns)
    return str(ns.get("__version__", ""))


def label_env(root: Path = ROOT) -> dict[str, str]:
    """Values of the bake variables behind the OCI labels, and ``SOURCE_DATE_EPOCH`` (bake
    passes it on as a build argument), unless set already. ``CREATED`` is the commit's time,
    as every timestamp of the image is: a rebuild of the commit is the same image."""
    epoch = source_date_epoch(root)
    values = {
        "VERSION": app_version(),
        "REVISION": git_revision(),
        "CREATED": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch))),
        "SOURCE_DATE_EPOCH": epoch,
    }
    return {k: v for k, v in values.items() if not os.environ.get(k)}


def extra_ca_env() -> dict[str, str]:
    """EXTRA_CA: empty when its file does not exist (the build then uses no extra CA)."""
    path = project.extra_ca()
    return {"EXTRA_CA": path if path and Path(path).is_file() else ""}


def bake_command(opts: BuildOptions, base: str, pyver: str | None) -> list[str]:
    bake_file = opts.root / project.BAKE_FILE.relative_to(ROOT)
    cmd = ["docker", "buildx", "bake", "-f", str(bake_file)]
    cmd += ["--builder", opts.builder] if opts.builder else []
    cmd += [f"--progress={opts.progress}"]
    cmd += ["--no-cache"] if opts.no_cache else []
    t = opts.target
    cmd += ["--set", f"{t}.platform={','.join(opts.platforms)}"]
    cmd += ["--set", f"{t}.args.BASE_IMAGE={base}"]
    cmd += ["--set", f"{t}.args.PYTHON_VERSION={pyver}"] if pyver else []
    cmd += ["--set", f"{t}.tags={opts.tag}"] if opts.tag else []
    cmd += ["--set", f"{t}.output=type=image,push=true"] if opts.push else []
    cmd += ["--set", f"{t}.output=type=docker"] if opts.load else []
    cmd += ["--set", f"{t}.output=type=oci,dest={opts.oci},{REWRITE}"] if opts.oci else []
    for item in opts.extra_set:
        cmd += ["--set", item]
    cmd += ["--print"] if opts.print_config else []
    return [*cmd, t]


def check_build(opts: BuildOptions) -> None:
    if sum(map(bool, (opts.load, opts.push, opts.oci))) > 1:
        raise BuildError("--load and --push exclude each other")
    if opts.target not in ("app", "test"):
        raise BuildError(f"--target must be app or test, not {opts.target!r}")
    require_engine()
    require_emulation(opts.platforms)


def _run_logged(
    cmd: list[str], cwd: Path, env: dict[str, str], log: Path | None
) -> subprocess.CompletedProcess[bytes]:
    if log is None:
        return subprocess.run(cmd, cwd=cwd, env=env)
    with log.open("wb") as out:
        return subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def build(opts: BuildOptions) -> list[str]:
    """Run (or print, with ``dry``) the bake for ``opts``; returns the command."""
    if opts.load and not opts.print_config:
        return _build_and_load(opts)
    check_build(opts)
    base, pyver = resolve_base(opts.base)
    cmd = bake_command(opts, base, pyver)
    env = {**os.environ, **label_env(), **extra_ca_env(), **opts.env}
    shell.echo(f"base image: {base}" + (f" (Python {pyver})" if pyver else ""))
    if opts.dry and not opts.print_config:
        shell.show(cmd, dry=True)
        return cmd
    space.ensure_build_space(dry=False)
    proc = _run_logged(cmd, opts.root, env, opts.log)
    if proc.returncode != 0:
        raise BuildError(f"docker buildx bake failed (exit {proc.returncode}); see output above")
    return cmd


def _build_and_load(opts: BuildOptions) -> list[str]:
    """``--load``: an OCI tarball with rewritten timestamps (which the docker driver refuses
    where it loads into the engine's store itself), loaded by ``docker load``, which keeps its
    digests: a loaded image is the image the reproducible check compares."""
    with tempfile.TemporaryDirectory(prefix="clickvote-load-") as tmp:
        tar = Path(tmp) / "image.tar"
        cmd = build(dataclasses.replace(opts, load=False, oci=tar))
        shell.change(["docker", "load", "-i", str(tar)], dry=opts.dry, timeout=None)
    return cmd


def image_ref(target: str, tag: str = "") -> str:
    return tag or project.image_ref(target)


@contextmanager
def loaded_test_image(platform: str, arch: str) -> Iterator[str]:
    """Build the ``test`` image for ``platform`` and load it under a tag of this process's
    own, removed afterwards: two runs at once (two checkouts, a benchmark beside ``nox``)
    never run each other's image. The build cache stays, so the next load is quick."""
    ref = f"{image_ref('test')}-{arch}-{os.getpid()}"
    build(BuildOptions(platforms=[platform], target="test", load=True, tag=ref))
    try:
        yield ref
    finally:
        shell.run(["docker", "image", "rm", ref], check=False, timeout=120)


def validate(dry: bool, base: str = "auto") -> None:
    """The bake group ``validate`` (check-only targets, cacheonly output)."""
    require_engine()
    ref, pyver = resolve_base(base)
    cmd = ["docker", "buildx", "bake", "-f", str(project.BAKE_FILE)]
    cmd += ["--set", f"*.args.BASE_IMAGE={ref}"]
    cmd += ["--set", f"*.args.PYTHON_VERSION={pyver}"] if pyver else []
    env = {**os.environ, **extra_ca_env()}
    shell.change([*cmd, "validate"], dry=dry, timeout=None, cwd=ROOT, env=env)
