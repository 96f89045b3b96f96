"""Where a Debian or Ubuntu host gets its Docker engine from: pure logic over the host's
``/etc/os-release`` and apt sources (``ci/host.py`` reads them, asks apt, and acts).

- Debian 12 "bookworm": its own docker.io (20.10) is too old, so the engine comes from
  Debian 13 "trixie", through a trixie source on the mirror the host already uses, pinned low.
- Every other Debian or Ubuntu release (Debian 13, Ubuntu 22.04 and 24.04, derivatives):
  the engine comes from the host's own archive, and only if apt's candidates are at least
  ``MINIMUM`` (Ubuntu ships them in ``<codename>-updates``, component ``universe``);
  otherwise ``inv setup`` stops and says what to install. An engine already installed from
  elsewhere (Docker CE, say) that meets ``MINIMUM`` is kept as it is.
- Ubuntu packages Chromium only as a snap: ``inv setup`` installs no browser there.
- The offline base image is Debian, built from a Debian mirror; an Ubuntu host's sources
  name none, so there ``$CLICKVOTE_APT_MIRROR`` must (``inv base`` says so).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

APT_MIRROR_ENV = "CLICKVOTE_APT_MIRROR"
OWN_SOURCE = "clickvote-trixie.sources"  # written by `inv setup` on Debian 12; never a mirror
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
PIN = "Package: *\nPin: release n=trixie\nPin-Priority: 100\n"

# The oldest versions the builds and tests are known to work with (Debian 13's): Docker
# Engine with the containerd image store loading multi-platform images, buildx with bake
# `matrix`, and `docker compose` v2 (Ubuntu's `docker-compose` package is v1, another program).
MINIMUM: dict[str, tuple[int, ...]] = {"engine": (26, 1), "buildx": (0, 13), "compose": (2, 0)}

# Emulation, base-image building and what the host tests need, from the host's own release.
SERVICE_PACKAGES = ["postgresql", "redis-server", "docker-registry"]
TOOL_PACKAGES = ["qemu-user-static", "binfmt-support", "debootstrap"]
BROWSER_PACKAGES = ["chromium", "chromium-driver"]


class UnsupportedHost(Exception):
    """This host cannot be provisioned as it is; the message says what to do."""


@dataclass(frozen=True)
class OsRelease:
    id: str
    version_id: str = ""
    codename: str = ""
    id_like: tuple[str, ...] = ()
    name: str = ""

    @property
    def ubuntu(self) -> bool:
        return self.id == "ubuntu" or "ubuntu" in self.id_like

    @property
    def debian(self) -> bool:
        return not self.ubuntu and (self.id == "debian" or "debian" in self.id_like)


def parse_os_release(text: str) -> OsRelease:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            values[key] = value.strip().strip("\"'")
    return OsRelease(
        id=values.get("ID", "").lower(),
        version_id=values.get("VERSION_ID", ""),
        # Ubuntu's derivatives name the Ubuntu release they follow in UBUNTU_CODENAME.
        codename=values.get("UBUNTU_CODENAME") or values.get("VERSION_CODENAME", ""),
        id_like=tuple(values.get("ID_LIKE", "").lower().split()),
        name=values.get("PRETTY_NAME") or values.get("NAME", ""),
    )


@dataclass(frozen=True)
class AptSource:
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]


def parse_deb822(text: str) -> list[AptSource]:
    """The enabled ``Types: deb`` stanzas of a ``.sources`` file."""
    found: list[AptSource] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(
            (k.strip().lower(), v.strip())
            for k, _, v in (ln.partition(":") for ln in stanza.splitlines())
            if not k.lstrip().startswith("#") and v
        )
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
            found.append(
                AptSource(
                    tuple(fields.get("uris", "").split()),
                    tuple(fields.get("suites", "").split()),
                    tuple(fields.get("components", "").split()),
                )
            )
    return found


def parse_one_line(text: str) -> list[AptSource]:
    """The ``deb`` lines of a classic ``sources.list``."""
    found: list[AptSource] = []
    for line in text.splitlines():
        parts = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
        if len(parts) >= 3 and parts[0] == "deb":
            found.append(AptSource((parts[1],), (parts[2],), tuple(parts[3:])))
    return found


@dataclass(frozen=True)
class Host:
    os: OsRelease
    sources: tuple[AptSource, ...]


def read_host(root: Path = Path("/")) -> Host:
    """``root``'s os-release and apt sources (a directory tree of such files in tests)."""
    etc = root / "etc"
    os_release = etc / "os-release"
    if not os_release.exists():
        os_release = root / "usr/lib/os-release"
    text = os_release.read_text() if os_release.exists() else ""
    apt = etc / "apt"
    sources: list[AptSource] = []
    for src in sorted((apt / "sources.list.d").glob("*.sources")):
        if src.name != OWN_SOURCE:
            sources += parse_deb822(src.read_text())
    for lst in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]:
        if lst.exists():
            sources += parse_one_line(lst.read_text())
    return Host(parse_os_release(text), tuple(sources))


def debian_mirror(host: Host, override: str | None = None) -> str:
    """The Debian mirror URI the host already uses (``override``: $CLICKVOTE_APT_MIRROR)."""
    if override:
        return override.rstrip("/")
    if host.os.ubuntu:
        raise UnsupportedHost(
            f"{host.os.name or 'this host'}'s apt sources name Ubuntu mirrors, which carry no "
            f"Debian releases: set {APT_MIRROR_ENV}=<a Debian mirror URI> (the offline base "
            "image is Debian's), or build on a registry's base (`inv build --base registry`)"
        )
    main = [
        uri
        for s in host.sources
        if any("-" not in suite for suite in s.suites)  # not -security, -updates
        for uri in s.uris
        if "security" not in uri
    ]
    if not main:
        raise UnsupportedHost(
            f"no Debian mirror found in the host's apt sources; set {APT_MIRROR_ENV}=<mirror URI>"
        )
    return main[0].rstrip("/")


@dataclass(frozen=True)
class Plan:
    """What ``inv setup`` installs, and from where."""

    engine: tuple[str, ...]  # the Docker engine's packages
    host: tuple[str, ...]  # the rest, always from the host's own release
    release: str | None = None  # install the engine as <package>/<release>
    source: str | None = None  # deb822 text of the extra source (OWN_SOURCE), with PIN
    check_versions: bool = True  # compare apt's candidates with MINIMUM before installing
    notes: tuple[str, ...] = field(default=())


def plan(host: Host, mirror_override: str | None = None) -> Plan:
    """Where this host gets its engine from (module docstring); refuses what is not Debian
    or Ubuntu."""
    os = host.os
    if not (os.debian or os.ubuntu):
        raise UnsupportedHost(
            f"`inv setup` provisions Debian and Ubuntu hosts, not {os.name or os.id or 'this one'}"
            f": install Docker Engine >= {_dotted('engine')} with buildx >= {_dotted('buildx')}"
            ", QEMU's binfmt handlers, PostgreSQL and Redis yourself, then run `inv doctor`"
        )
    if os.ubuntu:
        return Plan(
            engine=("docker.io", "containerd", "docker-buildx", "docker-compose-v2"),
            host=(*TOOL_PACKAGES, "debian-archive-keyring", *SERVICE_PACKAGES),
            notes=(
                "Ubuntu packages Chromium only as a snap, so no browser is installed: the "
                "browser tests (tests/web) need Chromium or Chrome at /usr/bin/chromium or "
                "named by CLICKVOTE_CHROMIUM",
            ),
        )
    engine = ("docker.io", "containerd", "docker-buildx", "docker-compose")
    host_packages = (*TOOL_PACKAGES, *BROWSER_PACKAGES, *SERVICE_PACKAGES)
    if os.id == "debian" and os.version_id == "12":
        source = (
            "# Written by `inv setup` (ci/host.py): the Docker engine from trixie.\n"
            f"Types: deb\nURIs: {debian_mirror(host, mirror_override)}\nSuites: trixie\n"
            f"Components: main\nSigned-By: {KEYRING}\n"
        )
        return Plan(engine, host_packages, "trixie", source, check_versions=False)
    return Plan(engine, host_packages)


def version(text: str) -> tuple[int, ...] | None:
    """(26, 1, 5) from a package or program version: 26.1.5+dfsg1-9, 1:2.3-1, v0.29.1."""
    m = re.search(r"(?:^|[\s:v])(\d+(?:\.\d+)+)", text.strip())
    return tuple(int(p) for p in m[1].split(".")) if m else None


def _dotted(what: str) -> str:
    return ".".join(map(str, MINIMUM[what]))


def parse_candidates(policy: str) -> dict[str, str | None]:
    """package -> candidate version (None: none) from ``apt-cache policy PKG...``."""
    out: dict[str, str | None] = {}
    package = None
    for line in policy.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            package = line.rstrip()[:-1]
        elif package and line.strip().startswith("Candidate:"):
            value = line.split(":", 1)[1].strip()
            out[package] = None if value == "(none)" else value
    return out


# Engine packages by what they provide (names as in Plan.engine).
PROVIDES = {
    "docker.io": "engine",
    "docker-buildx": "buildx",
    "docker-compose": "compose",
    "docker-compose-v2": "compose",
}


def too_old(found: Mapping[str, str | None]) -> list[str]:
    """What in ``found`` (engine/buildx/compose, or package names) is missing or below
    MINIMUM, one phrase each."""
    problems = []
    for name, ver in found.items():
        what = PROVIDES.get(name, name)
        if what not in MINIMUM:
            continue
        have = version(ver) if ver else None
        if have is None:
            problems.append(f"{name}: none available")
        elif have < MINIMUM[what]:
            problems.append(f"{name} {ver}: needs >= {_dotted(what)}")
    return problems


def refusal(host: Host, problems: Sequence[str]) -> str:
    """Why the host's own engine packages will not do, and what to install instead."""
    os = host.os
    advice = []
    if os.ubuntu:
        suites = {suite for s in host.sources for suite in s.suites}
        components = {c for s in host.sources for c in s.components}
        if os.codename and f"{os.codename}-updates" not in suites:
            advice.append(f"enable the {os.codename}-updates suite")
        if "universe" not in components:
            advice.append("enable the universe component")
    advice.append(
        "install Docker Engine >= {} with buildx >= {} and the compose plugin from Docker's "
        "own packages (docker-ce, docker-buildx-plugin, docker-compose-plugin)".format(
            _dotted("engine"), _dotted("buildx")
        )
    )
    todo = advice[0] if len(advice) == 1 else f"{', '.join(advice[:-1])}, or {advice[-1]}"
    return (
        f"{os.name or os.id}'s own Docker packages are too old for ClickVote's builds "
        f"({'; '.join(problems)}): {todo}, then run `inv setup` again"
    )
