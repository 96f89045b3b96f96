"""Where `inv setup` gets the Docker engine from (ci/distro.py, ci/host.py), given the
os-release and apt sources of Debian 12, Debian 13, Ubuntu 22.04 and Ubuntu 24.04 as those
releases ship them (fixtures/, mirror URIs replaced by example ones). Nothing is installed:
apt and the engine's programs are stand-ins."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from ci import distro, host

FIXTURES = Path(__file__).parent / "fixtures"
MIRROR = "http://mirror.example/debian"
DEBIAN_ENGINE = ("docker.io", "containerd", "docker-buildx", "docker-compose")
UBUNTU_ENGINE = ("docker.io", "containerd", "docker-buildx", "docker-compose-v2")

# `apt-cache policy` of Ubuntu's engine packages: with <codename>-updates, and without.
POLICY_UPDATES = """\
docker.io:
  Installed: (none)
  Candidate: 27.5.1-0ubuntu3~24.04.2
  Version table:
     27.5.1-0ubuntu3~24.04.2 500
        500 http://mirror.example/ubuntu noble-updates/universe amd64 Packages
     24.0.7-0ubuntu4 500
        500 http://mirror.example/ubuntu noble/universe amd64 Packages
containerd:
  Installed: (none)
  Candidate: 1.7.27-0ubuntu1~24.04.1
docker-buildx:
  Installed: (none)
  Candidate: 0.20.1-0ubuntu1~24.04.2
docker-compose-v2:
  Installed: (none)
  Candidate: 2.33.0+ds1-0ubuntu1~24.04.1
"""
POLICY_RELEASE_ONLY = """\
docker.io:
  Installed: (none)
  Candidate: 20.10.12-0ubuntu4
  Version table:
     20.10.12-0ubuntu4 500
        500 http://mirror.example/ubuntu jammy/universe amd64 Packages
containerd:
  Installed: (none)
  Candidate: 1.5.9-0ubuntu3
docker-buildx:
  Installed: (none)
  Candidate: (none)
docker-compose-v2:
  Installed: (none)
  Candidate: (none)
"""


def read(name: str) -> distro.Host:
    return distro.read_host(FIXTURES / name)


@pytest.mark.parametrize("name", ["debian-12", "debian-12-installer"])
def test_debian_12_gets_the_engine_from_trixie_on_its_own_mirror(name: str) -> None:
    h = read(name)
    assert (h.os.id, h.os.version_id, h.os.codename) == ("debian", "12", "bookworm")
    assert distro.debian_mirror(h) == MIRROR  # not security's, not setup's own trixie source
    plan = distro.plan(h)
    assert plan.engine == DEBIAN_ENGINE
    assert plan.release == "trixie"
    assert plan.source is not None
    assert f"URIs: {MIRROR}\nSuites: trixie\nComponents: main\n" in plan.source
    assert not plan.check_versions  # trixie's are known: docker.io 26.1, buildx 0.13
    assert "chromium" in plan.host and "postgresql" in plan.host
    other = distro.plan(h, mirror_override="http://other.example/debian/")
    assert other.source is not None and "URIs: http://other.example/debian\n" in other.source


@pytest.mark.parametrize("name", ["debian-13", "debian-13-installer"])
def test_debian_13_uses_its_own_packages(name: str) -> None:
    h = read(name)
    assert (h.os.version_id, h.os.codename) == ("13", "trixie")
    plan = distro.plan(h)
    assert plan.engine == DEBIAN_ENGINE
    assert plan.release is None and plan.source is None  # trixie is this host's own release
    assert plan.check_versions
    assert "chromium" in plan.host
    assert distro.debian_mirror(h) == MIRROR  # for `inv base`


@pytest.mark.parametrize(
    ("name", "codename"), [("ubuntu-22.04", "jammy"), ("ubuntu-24.04", "noble")]
)
def test_ubuntu_uses_its_own_packages_checked(name: str, codename: str) -> None:
    h = read(name)
    assert h.os.ubuntu and not h.os.debian and h.os.codename == codename
    assert any(f"{codename}-updates" in s.suites and "universe" in s.components for s in h.sources)
    plan = distro.plan(h)
    assert plan.engine == UBUNTU_ENGINE  # Ubuntu's docker-compose is v1, another program
    assert plan.release is None and plan.source is None  # no trixie on an Ubuntu mirror
    assert plan.check_versions
    assert "chromium" not in plan.host and "chromium-driver" not in plan.host  # snap only
    assert any("snap" in note and "CLICKVOTE_CHROMIUM" in note for note in plan.notes)
    assert "debian-archive-keyring" in plan.host  # debootstrap of the Debian base
    with pytest.raises(distro.UnsupportedHost, match=distro.APT_MIRROR_ENV):
        distro.debian_mirror(h)  # its mirrors are Ubuntu's: the Debian base needs one named
    assert distro.debian_mirror(h, "http://other.example/debian/") == "http://other.example/debian"


def test_ubuntu_candidates_new_enough_or_a_refusal_naming_what_to_install() -> None:
    good = distro.parse_candidates(POLICY_UPDATES)
    assert good["docker.io"] == "27.5.1-0ubuntu3~24.04.2"
    assert distro.too_old(good) == []
    old = distro.parse_candidates(POLICY_RELEASE_ONLY)
    assert old["docker-buildx"] is None
    problems = distro.too_old(old)
    assert problems == [
        "docker.io 20.10.12-0ubuntu4: needs >= 26.1",
        "docker-buildx: none available",
        "docker-compose-v2: none available",
    ]
    jammy = read("ubuntu-22.04")
    release_only = replace(jammy, sources=tuple(s for s in jammy.sources if s.suites == ("jammy",)))
    message = distro.refusal(release_only, problems)
    assert "enable the jammy-updates suite" in message
    assert "docker-ce" in message and "docker-buildx: none available" in message
    assert "jammy-updates" not in distro.refusal(jammy, problems)  # already enabled there


def test_other_systems_are_refused_with_what_to_install() -> None:
    fedora = distro.Host(distro.parse_os_release('ID=fedora\nPRETTY_NAME="Fedora 41"\n'), ())
    with pytest.raises(distro.UnsupportedHost, match=r"Fedora 41.*Docker Engine >= 26\.1"):
        distro.plan(fedora)
    # Older Debian/Ubuntu releases get their own packages, which the version check refuses.
    focal = distro.parse_os_release("ID=ubuntu\nVERSION_ID=20.04\nVERSION_CODENAME=focal\n")
    assert distro.plan(distro.Host(focal, ())).check_versions
    mint = distro.parse_os_release('ID=linuxmint\nID_LIKE="ubuntu debian"\nUBUNTU_CODENAME=noble')
    assert mint.ubuntu and mint.codename == "noble"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("26.1.5+dfsg1-9+b2", (26, 1, 5)),
        ("27.5.1-0ubuntu3~24.04.2", (27, 5, 1)),
        ("1:2.3-1", (2, 3)),
        ("Docker version 26.1.5+dfsg1, build a72d7cd\n", (26, 1, 5)),
        ("github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3\n", (0, 13, 1)),
        ("github.com/docker/buildx v0.29.1 a32761aeb3debd39be1eca514af3693af0db334b\n", (0, 29, 1)),
        ("Docker Compose version v2.26.1\n", (2, 26, 1)),
        ("(none)", None),
    ],
)
def test_versions_of_packages_and_programs(text: str, expected: tuple[int, ...] | None) -> None:
    assert distro.version(text) == expected


# --------------------------------------------------------------- ci/host.py on these hosts


def setup_on(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    policy: str = POLICY_UPDATES,
    programs: dict[str, str] | None = None,
) -> list[list[str]]:
    """ensure_packages' apt and program calls go to stand-ins; returns the commands run."""
    ran: list[list[str]] = []

    def output(cmd: Sequence[str], timeout: float = 20) -> str | None:
        if list(cmd[:2]) == ["apt-cache", "policy"]:
            return policy
        return (programs or {}).get(" ".join(cmd[:2]))

    def fake_change(cmd: Sequence[str], **kw: object) -> None:
        ran.append(list(cmd))

    monkeypatch.setattr(host, "HOST_ROOT", FIXTURES / name)
    monkeypatch.setattr(host, "output", output)
    monkeypatch.setattr(host, "change", fake_change)
    monkeypatch.setattr(host, "missing", lambda packages: list(packages))  # a fresh machine
    monkeypatch.setattr(host, "missing_commands", lambda: [])
    monkeypatch.setattr(host, "write_file", lambda path, text, dry: True)
    monkeypatch.delenv(host.APT_MIRROR_ENV, raising=False)
    return ran


def installs(ran: list[list[str]]) -> list[list[str]]:
    return [cmd[cmd.index("--no-install-recommends") + 1 :] for cmd in ran if "install" in cmd]


@pytest.mark.parametrize("name", ["ubuntu-22.04", "ubuntu-24.04"])
def test_setup_on_ubuntu_installs_ubuntus_engine(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    ran = setup_on(monkeypatch, name)
    host.ensure_packages(dry=False)
    engine, rest = installs(ran)
    assert engine == list(UBUNTU_ENGINE)  # no /trixie
    assert "chromium" not in rest and "qemu-user-static" in rest


def test_setup_on_ubuntu_stops_when_its_packages_are_too_old(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran = setup_on(monkeypatch, "ubuntu-22.04", POLICY_RELEASE_ONLY)
    with pytest.raises(host.HostError, match=r"too old.*docker\.io 20\.10\.12"):
        host.ensure_packages(dry=False)
    assert installs(ran) == []


def test_setup_keeps_an_engine_new_enough_from_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    docker_ce = {
        "dockerd --version": "Docker version 28.5.1, build f8215cc\n",
        "docker buildx": "github.com/docker/buildx v0.29.1 a32761a\n",
        "docker compose": "Docker Compose version v2.40.0\n",
    }
    ran = setup_on(monkeypatch, "ubuntu-24.04", POLICY_RELEASE_ONLY, docker_ce)
    host.ensure_packages(dry=False)
    assert [cmd for cmd in installs(ran) if "docker.io" in cmd] == []


@pytest.mark.parametrize(
    ("name", "engine"), [("debian-12", "docker.io/trixie"), ("debian-13", "docker.io")]
)
def test_setup_on_debian(monkeypatch: pytest.MonkeyPatch, name: str, engine: str) -> None:
    ran = setup_on(monkeypatch, name, DEBIAN_13_POLICY if name == "debian-13" else "")
    host.ensure_packages(dry=False)
    first, rest = installs(ran)
    assert first[0] == engine
    assert "chromium" in rest


DEBIAN_13_POLICY = """\
docker.io:
  Candidate: 26.1.5+dfsg1-9+b9
containerd:
  Candidate: 1.7.24~ds1-6+b4
docker-buildx:
  Candidate: 0.13.1+ds1-3
docker-compose:
  Candidate: 2.26.1-4
"""


@pytest.mark.parametrize("systemd", [True, False])
def test_image_store_switch_restarts_a_dockerd_that_systemd_runs(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    systemd: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """GitHub's Ubuntu runners run Docker CE under systemd, on the classic image store."""
    ran: list[list[str]] = []

    def fake_change(cmd: Sequence[str], **kw: object) -> None:
        ran.append(list(cmd))

    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text('{"log-level": "warn"}')
    active = "active\n" if systemd else "inactive\n"
    monkeypatch.setattr(host, "DAEMON_JSON", daemon_json)
    monkeypatch.setattr(host, "engine_answers", lambda: True)
    monkeypatch.setattr(host, "output", lambda cmd, timeout=20: active)
    monkeypatch.setattr(host, "change", fake_change)
    host.ensure_daemon_json(dry=False)
    assert '"containerd-snapshotter": true' in daemon_json.read_text()
    assert '"log-level": "warn"' in daemon_json.read_text()
    assert ran == ([["systemctl", "restart", "docker"]] if systemd else [])
    assert ("restart dockerd" in capsys.readouterr().err) is not systemd
