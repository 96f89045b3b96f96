"""Configuration precedence, references and candidate tag numbering (no Docker)."""

from __future__ import annotations

import pytest

from ci import project
from ci.release import ReleaseError, candidate, config, reports


def test_defaults_are_local() -> None:
    cfg = config.load({}, environ={})
    assert cfg.registry == "127.0.0.1:5000" and cfg.is_local and cfg.plain_http
    assert cfg.image("1.0.0-rc.1") == f"127.0.0.1:5000/{project.image()}:1.0.0-rc.1"
    assert cfg.image("sha256:" + "a" * 64, test=True).startswith(
        f"127.0.0.1:5000/{project.test_image()}@sha256:"
    )


def test_invoke_config_then_environment() -> None:
    cfg = config.load(
        {"registry": "registry.internal:5443", "repository": "team/cv", "quorum": 5},
        environ={"CLICKVOTE_REPOSITORY": "other/cv"},
    )
    assert cfg.registry == "registry.internal:5443" and not cfg.plain_http
    assert cfg.repository == "other/cv" and cfg.quorum == 5
    assert cfg.quorum_for("linux/arm64") == 5 and cfg.quorum_for("linux/amd64") == 1


def test_platforms_needing_a_matching_rebuild() -> None:
    assert not config.load({}, environ={}).rebuild_required("linux/arm64")  # none by default
    cfg = config.load({"require_rebuild": ["linux/amd64"]}, environ={})
    assert cfg.rebuild_required("linux/amd64") and not cfg.rebuild_required("linux/arm64")
    cfg = config.load({}, environ={"CLICKVOTE_REQUIRE_REBUILD": "arm64, linux/arm/v7"})
    assert cfg.require_rebuild == ("linux/arm64", "linux/arm/v7")
    everywhere = config.load({"require_rebuild": "all"}, environ={})
    assert all(everywhere.rebuild_required(p) for p in project.platforms())
    with pytest.raises(ReleaseError, match="unknown platform 'mips'"):
        config.load({"require_rebuild": "mips"}, environ={})


def test_unknown_key_is_refused() -> None:
    with pytest.raises(ReleaseError, match=r"release\.registy"):
        config.load({"registy": "x"}, environ={})


def test_loopback() -> None:
    assert config.is_loopback("localhost:5000") and config.is_loopback("[::1]:5000")
    assert not config.is_loopback("203.0.113.7:5000")


def test_next_rc() -> None:
    tags = ["0.1.0-rc.1", "0.1.0-rc.3", "0.1.0-rc.10x", "0.2.0-rc.7", "latest", "0.1.0"]
    assert candidate.next_rc("{version}-rc.{n}", "0.1.0", tags) == 4
    assert candidate.next_rc("{version}-rc.{n}", "0.3.0", tags) == 1
    assert candidate.next_rc("v{version}-candidate{n}", "1.0", ["v1.0-candidate2"]) == 3


def test_probe_rc() -> None:
    cfg = config.load({}, environ={})
    taken = {"1.0.0-rc.1", "1.0.0-rc.2"}
    assert candidate.probe_rc(cfg, "1.0.0", taken.__contains__) == 3


def test_app_version_matches_package() -> None:
    import clickvote

    assert candidate.app_version() == clickvote.__version__


def test_report_paths(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = reports.report_path(tmp_path, "1.0.0-rc.1", "ab" * 32, "linux/arm/v7")
    assert p == tmp_path / "1.0.0-rc.1" / "abababababab-armv7.json"
    with pytest.raises(ReleaseError):
        reports.report_path(tmp_path, "../evil", "ab" * 32, "linux/arm64")
