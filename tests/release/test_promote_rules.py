"""What `inv promote` and `inv manifest --check` refuse before anything is tagged (no Docker:
the registry is faked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from ci import project
from ci.release import ReleaseError, config, imagetools, promote
from ci.release.oci import Index
from tasks import release as release_tasks

from .factories import TAG, make_index, platform_dict, predicates_for


@pytest.fixture()
def promotions(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Calls that reach ``promote.promote`` (which is not run)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(promote, "promote", lambda cfg, tag, **kw: calls.append(dict(kw, cfg=cfg)))
    for var in ("CLICKVOTE_QUORUM", "CLICKVOTE_VERIFICATIONS_DIR"):
        monkeypatch.delenv(var, raising=False)
    return calls


def run_promote(**options: Any) -> None:
    release_tasks.promote(Context(), TAG, version="9.9.9", **options)


@pytest.mark.parametrize(
    "options",
    [{"quorum": 1}, {"allowed": "/tmp/other_allowed_signers"}, {"out": "/tmp/other-verifications"}],
)
def test_overrides_are_refused_outside_dry(
    promotions: list[dict[str, Any]], options: dict[str, Any]
) -> None:
    with pytest.raises(Exit, match="are for --dry runs only"):
        run_promote(**options)
    assert promotions == []
    run_promote(dry=True, **options)
    assert len(promotions) == 1 and promotions[0]["dry"] is True


@pytest.mark.parametrize(
    "var, value", [("CLICKVOTE_QUORUM", "1"), ("CLICKVOTE_VERIFICATIONS_DIR", "/tmp/v")]
)
def test_environment_overrides_are_refused_outside_dry(
    promotions: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(Exit, match="are for --dry runs only"):
        run_promote()
    assert promotions == []


def test_committed_configuration_promotes(promotions: list[dict[str, Any]]) -> None:
    committed = project.ROOT / "verifications" / "allowed_signers"
    run_promote(allowed=str(committed), out=str(project.ROOT / "verifications"), quorum=3)
    [call] = promotions
    assert call["cfg"].quorum_for("linux/arm64") == 3 and call["dry"] is False


@pytest.fixture()
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A fake registry serving one candidate; records what would be tagged."""
    served: dict[str, Any] = {"index": make_index(), "predicates": None, "created": []}

    def configs(cfg: Any, idx: Index, **_: Any) -> dict[str, dict[str, str]]:
        return {d.digest: platform_dict(p) for p, d in idx.images.items()}

    def predicates(cfg: Any, idx: Index, **_: Any) -> dict[str, set[str]]:
        return predicates_for(idx) if served["predicates"] is None else served["predicates"]

    monkeypatch.setattr(imagetools, "index", lambda ref: served["index"])
    monkeypatch.setattr(imagetools, "configs", configs)
    monkeypatch.setattr(imagetools, "predicates", predicates)
    monkeypatch.setattr(imagetools, "exists", lambda ref: False)
    monkeypatch.setattr(imagetools, "create", lambda *a, **kw: served["created"].append(a))
    return served


def test_candidate_without_attestations_is_refused(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    cfg = config.load({}, environ={}).with_overrides(verifications_dir=tmp_path)
    promote.inspect(cfg, TAG, check=True)  # complete: passes
    registry["index"] = make_index(attestations=False)
    with pytest.raises(ReleaseError, match=r"linux/arm64 \(sha256:\w+\) has no SBOM attestation"):
        promote.inspect(cfg, TAG, check=True)
    with pytest.raises(ReleaseError, match="has no provenance attestation"):
        promote.promote(cfg, TAG, version="9.9.9", dry=True)
    assert registry["created"] == []
