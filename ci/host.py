"""Host provisioning and checks for building and testing ClickVote's images.

Used by ``inv setup`` and ``inv doctor`` (tasks/setup.py). Everything here is
idempotent: each step first checks whether it is already satisfied and then
does nothing. ``dry=True`` prints what would be done instead of doing it.

Where the Docker engine comes from depends on the host (``ci/distro.py``):
on Debian 12 from Debian 13 "trixie" (docker.io 26, buildx with bake
``matrix``, containerd image store for multi-platform ``--load``), through a
trixie apt source with a low pin priority built from the mirror the host's own
apt configuration already uses (or ``$CLICKVOTE_APT_MIRROR``); elsewhere
(Debian 13, Ubuntu 22.04/24.04) from the host's own archive, if new enough.
No mirror host name is written into this repository.
"""

from __future__ import annotations

import json
import os
import platform as _platform
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ci import distro, project, space
from ci.shell import ToolError, change, echo, output

APT_MIRROR_ENV = distro.APT_MIRROR_ENV
HOST_ROOT = Path("/")
TRIXIE_SOURCE = Path("/etc/apt/sources.list.d") / distro.OWN_SOURCE
TRIXIE_PIN = Path("/etc/apt/preferences.d/clickvote-trixie.pref")
DAEMON_JSON = Path("/etc/docker/daemon.json")
DOCKERD_LOG = Path("/var/log/clickvote-dockerd.log")
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
APT_LOCK = ["-o", "DPkg::Lock::Timeout=600"]
CLI_PLUGIN_DIR = Path("/usr/libexec/docker/cli-plugins")

# Commands the host tests need that may come from elsewhere than Debian (Node.js often
# does): the packages are installed only when the command is not on PATH.
HOST_COMMANDS = {"npm": ["nodejs", "npm"], "node": ["nodejs"], "ssh-keygen": ["openssh-client"]}


def binfmt_handlers(machine: str = "") -> dict[str, str]:
    """QEMU binfmt handler -> platform, for each platform the bake file lists that a host of
    ``machine`` (this one's by default) runs emulated."""
    machine = machine or _platform.machine()
    table = project.table()
    emulated = [p for p in project.platforms() if not project.runs_natively(p, machine)]
    return {table[p].qemu: p for p in emulated}


HostError = ToolError  # the name the build side knows it by


# --------------------------------------------------------------------------- helpers


def write_file(path: Path, text: str, dry: bool) -> bool:
    """Write ``text`` to ``path`` unless it already holds it. True when changed."""
    if path.exists() and path.read_text() == text:
        return False
    echo(("would write " if dry else "writing ") + str(path))
    if not dry:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return True


# --------------------------------------------------------------------------- apt


def read_host() -> distro.Host:
    return distro.read_host(HOST_ROOT)


def apt_mirror() -> str:
    """The Debian mirror URI the host already uses (or ``$CLICKVOTE_APT_MIRROR``)."""
    try:
        return distro.debian_mirror(read_host(), os.environ.get(APT_MIRROR_ENV))
    except distro.UnsupportedHost as exc:
        raise HostError(str(exc)) from None


def host_plan() -> distro.Plan:
    try:
        return distro.plan(read_host(), os.environ.get(APT_MIRROR_ENV))
    except distro.UnsupportedHost as exc:
        raise HostError(str(exc)) from None


def ensure_trixie_source(source: str, dry: bool) -> bool:
    """The trixie apt source and its low pin. True when something changed."""
    changed = write_file(TRIXIE_SOURCE, source, dry)
    return write_file(TRIXIE_PIN, distro.PIN, dry) or changed


def installed(packages: Sequence[str]) -> set[str]:
    out = output(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *packages])
    out = out or ""
    return {ln.split()[0] for ln in out.splitlines() if ln.endswith(" installed")}


def missing(packages: Sequence[str]) -> list[str]:
    have = installed(packages)
    return [p for p in packages if p not in have]


def missing_commands() -> list[str]:
    """Packages providing the HOST_COMMANDS that are not on PATH."""
    need = [pkg for cmd, pkgs in HOST_COMMANDS.items() if not shutil.which(cmd) for pkg in pkgs]
    return sorted(set(need))


def _release_lists_present(release: str) -> bool:
    return any(Path("/var/lib/apt/lists").glob(f"*_dists_{release}_*Packages*"))


def apt_install(packages: Sequence[str], dry: bool, release: str | None = None) -> None:
    """Install ``packages``; with ``release``, those packages (only) from that release.

    ``pkg/release`` rather than ``-t release``: ``-t`` makes the release the
    target of the whole transaction, so apt also upgrades already-installed
    dependencies (libc6, libstdc++6, base-files, ...) to that release.
    """
    cmd = ["apt-get", *APT_LOCK, "install", "-y", "--no-install-recommends"]
    names = [f"{p}/{release}" for p in packages] if release else list(packages)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    change([*cmd, *names], dry=dry, timeout=None, env=env)


def engine_versions() -> dict[str, str | None]:
    """Versions of the engine's programs installed by whatever means (None: missing)."""
    return {
        "engine": output(["dockerd", "--version"]),
        "buildx": output(["docker", "buildx", "version"]),
        "compose": output(["docker", "compose", "version"]),
    }


def check_candidates(host: distro.Host, packages: Sequence[str], dry: bool) -> None:
    """apt's candidates for the engine ``packages`` meet distro.MINIMUM, or stop here."""
    policy = output(["apt-cache", "policy", *packages]) or ""
    candidates = distro.parse_candidates(policy)
    problems = distro.too_old({p: candidates.get(p) for p in packages})
    if not problems:
        echo("ok: " + ", ".join(f"{p} {candidates[p]}" for p in packages))
    elif dry:
        echo("would stop: " + distro.refusal(host, problems))
    else:
        raise HostError(distro.refusal(host, problems))


def ensure_packages(dry: bool) -> None:
    plan = host_plan()
    changed = ensure_trixie_source(plan.source, dry) if plan.source else False
    need_engine = missing(plan.engine)
    if need_engine and not distro.too_old(engine_versions()):
        echo(f"ok: a Docker engine new enough is installed (keeping it; not {need_engine})")
        need_engine = []
    need_host = missing(plan.host) + missing_commands()
    for note in plan.notes:
        echo(f"note: {note}")
    if not (need_engine or need_host):
        echo("ok: apt packages installed")
        return
    lists_stale = plan.release is not None and not _release_lists_present(plan.release)
    if changed or lists_stale or need_host or (need_engine and plan.check_versions):
        change(["apt-get", *APT_LOCK, "update", "-qq"], dry=dry, timeout=None)
    if need_engine:
        if plan.check_versions:
            check_candidates(read_host(), plan.engine, dry)
        apt_install(need_engine, dry, release=plan.release)
    if need_host:
        apt_install(need_host, dry)


# --------------------------------------------------------------------------- docker


def ensure_daemon_json(dry: bool) -> None:
    """Turn on the containerd image store, keeping whatever else daemon.json says."""
    conf = json.loads(DAEMON_JSON.read_text() or "{}") if DAEMON_JSON.exists() else {}
    if conf.get("features", {}).get("containerd-snapshotter") is True:
        echo("ok: containerd image store configured")
        return
    conf.setdefault("features", {})["containerd-snapshotter"] = True
    write_file(DAEMON_JSON, json.dumps(conf, indent=2) + "\n", dry)
    if not dry and engine_answers() and not restart_systemd_dockerd(dry):
        echo("note: restart dockerd to switch to the containerd image store")


def restart_systemd_dockerd(dry: bool) -> bool:
    """Restart dockerd where systemd runs it (Ubuntu, GitHub's runners with Docker CE);
    False where nothing does (dockerd started by `inv setup` is left to its owner)."""
    if (output(["systemctl", "is-active", "docker"]) or "").strip() != "active":
        return False
    change(["systemctl", "restart", "docker"], dry=dry, timeout=None)
    return True


def engine_answers() -> bool:
    return output(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=10) is not None


def ensure_cli_plugins(dry: bool) -> None:
    """The docker client on PATH must find trixie's buildx/compose plugins."""
    docker = shutil.which("docker")
    release = host_plan().release
    if docker is None and release is None:  # the engine packages bring their client
        if not dry:
            raise HostError("no docker client on PATH after installing the engine packages")
        return
    if docker is None:  # machines of this kind ship a client; trixie's otherwise
        apt_install(["docker-cli"], dry, release=release)
        docker = shutil.which("docker") or "docker"
        if dry:
            return
    if output(["docker", "buildx", "version"]) is not None:
        echo(f"ok: {docker} finds the buildx plugin")
        return
    user_dir = Path.home() / ".docker" / "cli-plugins"
    for name in ("docker-buildx", "docker-compose"):
        src = CLI_PLUGIN_DIR / name
        if src.exists() and not (user_dir / name).exists():
            echo(f"{'would link' if dry else 'linking'} {user_dir / name} -> {src}")
            if not dry:
                user_dir.mkdir(parents=True, exist_ok=True)
                (user_dir / name).symlink_to(src)


def start_dockerd(dry: bool, wait: float = 30) -> None:
    if engine_answers():
        echo("ok: Docker engine answers")
        return
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    echo(f"{'would start' if dry else 'starting'} {dockerd} (log: {DOCKERD_LOG})")
    if dry:
        return
    with DOCKERD_LOG.open("ab") as log:
        subprocess.Popen(
            [dockerd],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if engine_answers():
            echo("ok: Docker engine started")
            return
        time.sleep(1)
    raise HostError(f"dockerd did not answer within {wait:.0f} s; see {DOCKERD_LOG}")


# --------------------------------------------------------------------------- binfmt


def ensure_binfmt_mounted(dry: bool) -> None:
    if (BINFMT_DIR / "status").exists():
        echo("ok: binfmt_misc mounted")
        return
    change(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)], dry=dry, timeout=None)


@dataclass
class Handler:
    name: str
    enabled: bool
    flags: str
    interpreter: str


def binfmt_handler(name: str) -> Handler | None:
    path = BINFMT_DIR / name
    if not path.exists():
        return None
    text = path.read_text()
    flags = re.search(r"^flags:\s*(\S*)", text, re.M)
    interp = re.search(r"^interpreter\s+(\S+)", text, re.M)
    return Handler(
        name,
        text.startswith("enabled"),
        flags[1] if flags else "",
        interp[1] if interp else "",
    )


def handler_ok(h: Handler | None) -> bool:
    return h is not None and h.enabled and "F" in h.flags


def ensure_binfmt_handlers(dry: bool) -> None:
    if all(handler_ok(binfmt_handler(n)) for n in binfmt_handlers()):
        echo("ok: binfmt handlers " + ", ".join(binfmt_handlers()) + " enabled with F flag")
        return
    change(["update-binfmts", "--enable"], dry=dry, timeout=None)
    if dry:
        return
    bad = [n for n in binfmt_handlers() if not handler_ok(binfmt_handler(n))]
    if bad:
        raise HostError(f"binfmt handlers {bad} not enabled with the F flag after update-binfmts")


def qemu_version() -> str | None:
    out = output(["qemu-aarch64-static", "--version"])
    m = re.search(r"version (\S+)", out or "")
    return m[1] if m else None


# --------------------------------------------------------------------------- setup


def setup(dry: bool = False) -> None:
    """Provision the host; every step is skipped when already satisfied."""
    if os.geteuid() != 0 and not dry:
        raise HostError("`inv setup` provisions the host and must run as root")
    ensure_binfmt_mounted(dry)
    ensure_packages(dry)
    ensure_binfmt_handlers(dry)
    ensure_daemon_json(dry)
    ensure_cli_plugins(dry)
    start_dockerd(dry)


# --------------------------------------------------------------------------- doctor


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _engine_check() -> Check:
    ver = output(["docker", "version", "--format", "{{.Server.Version}}"], timeout=10)
    if ver is None:
        return Check("engine", False, "no Docker engine answers", "inv setup (starts dockerd)")
    client = (output(["docker", "version", "--format", "{{.Client.Version}}"]) or "?").strip()
    detail = f"server {ver.strip()}, client {client} ({shutil.which('docker')})"
    return _version_check("engine", ver, detail)


def _version_check(name: str, ver: str, detail: str) -> Check:
    """OK when ``ver`` is at least distro.MINIMUM[name]."""
    problems = distro.too_old({name: ver})
    if not problems:
        return Check(name, True, detail)
    return Check(name, False, f"{detail}; {problems[0]}", _UPGRADE_FIX)


_UPGRADE_FIX = (
    "inv setup installs a new enough engine on Debian 12/13 and Ubuntu 22.04/24.04; otherwise "
    "install Docker's own packages (docker-ce, docker-buildx-plugin, docker-compose-plugin)"
)


def _image_store_check() -> Check:
    out = output(["docker", "info", "--format", "{{json .DriverStatus}}"], timeout=10) or ""
    ok = "io.containerd.snapshotter" in out
    detail = "containerd image store" if ok else f"classic store {out.strip()[:60]}"
    return Check("image store", ok, detail, f"inv setup (sets {DAEMON_JSON}, restart dockerd)")


def _buildx_check() -> Check:
    ver = output(["docker", "buildx", "version"])
    if ver is None:
        return Check("buildx", False, "docker buildx missing", "inv setup (installs docker-buildx)")
    driver = output(["docker", "buildx", "inspect"]) or ""
    m = re.search(r"^Driver:\s*(\S+)", driver, re.M)
    return _version_check("buildx", ver, f"{ver.split()[1]} driver {m[1] if m else '?'}")


def _binfmt_check(name: str) -> Check:
    h = binfmt_handler(name)
    platform = binfmt_handlers()[name]
    if h is None:
        return Check(f"binfmt {name}", False, f"not registered ({platform})", "inv setup")
    detail = f"{'enabled' if h.enabled else 'disabled'} flags={h.flags} {h.interpreter}"
    return Check(f"binfmt {name}", handler_ok(h), detail, "inv setup (update-binfmts --enable)")


def _qemu_check() -> Check:
    ver = qemu_version()
    return Check("qemu", ver is not None, ver or "qemu-aarch64-static missing", "inv setup")


def _image_check(label: str, refs: Sequence[str]) -> Check:
    """OK when any of ``refs`` is in the local store."""
    for ref in refs:
        out = output(["docker", "image", "inspect", "--format", "{{.Id}}", ref], timeout=10)
        if out is not None:
            return Check(label, True, f"{ref} {out.strip()[:19]}")
    return Check(label, False, f"none of {', '.join(refs)} in the local store", "inv base")


def _space_check() -> Check:
    root = space.docker_root()
    free, need = space.free_gb(root), space.min_free_gb()
    detail = f"{free:.1f} GB free on {root} (a build wants {need:.0f} GB)"
    fix = "docker builder prune (a build prunes its cache itself); docker system df"
    return Check("disk", free >= need, detail, fix)


def doctor_checks(base_images: Sequence[str]) -> list[Check]:
    checks = [_engine_check()]
    if checks[0].ok:
        checks += [_image_store_check(), _buildx_check(), _space_check()]
    checks += [_binfmt_check(n) for n in binfmt_handlers()]
    checks.append(_qemu_check())
    if checks[0].ok:
        checks.append(_image_check("base image", base_images))
    return checks
