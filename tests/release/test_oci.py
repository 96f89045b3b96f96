"""Manifest list parsing and checks from JSON fixtures (no Docker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci import project
from ci.release import ReleaseError
from ci.release.oci import check_index, digest_of, format_index, parse_index, platform_name

from .factories import index_doc, make_index, platform_dict

FIXTURES = Path(__file__).parent / "fixtures"


def configs_for(index, overrides=None):  # type: ignore[no-untyped-def]
    overrides = overrides or {}
    return {d.digest: overrides.get(p, platform_dict(p)) for p, d in index.images.items()}


def test_platform_names() -> None:
    assert platform_name({"os": "linux", "architecture": "arm", "variant": "v7"}) == "linux/arm/v7"
    assert platform_name({"os": "linux", "architecture": "arm64", "variant": "v8"}) == "linux/arm64"
    assert platform_name(None) == "unknown/unknown"


def test_digest_is_sha256_of_the_raw_bytes() -> None:
    raw = json.dumps(index_doc()).encode()
    assert parse_index(raw).digest == digest_of(raw)
    assert parse_index(raw + b" ").digest != digest_of(raw)


def test_attestations_are_not_platforms() -> None:
    index = make_index()
    assert list(index.images) == project.platforms()
    assert len(index.attestations) == len(project.platforms())
    assert "unknown/unknown" not in index.images


def test_buildx_fixture_parses() -> None:
    raw = (FIXTURES / "buildx-index.json").read_bytes()
    index = parse_index(raw)
    assert set(index.images) == set(project.platforms())
    assert all(a.platform == "unknown/unknown" for a in index.attestations)
    text = format_index(index)
    assert "(attestation)" in text and "linux/arm/v7" in text


def test_complete_index_passes() -> None:
    index = make_index()
    result = check_index(index, project.platforms(), configs_for(index))
    assert result.ok, result.problems


def test_missing_platform_is_named() -> None:
    index = make_index(["linux/amd64", "linux/arm64"])
    result = check_index(index, project.platforms(), configs_for(index))
    assert result.problems == ["missing platform linux/arm/v7"]


def test_manifest_that_lies_about_its_architecture() -> None:
    index = make_index()
    configs = configs_for(index, {"linux/arm64": {"os": "linux", "architecture": "amd64"}})
    result = check_index(index, project.platforms(), configs)
    assert not result.ok
    assert "claims linux/arm64 but its config says linux/amd64" in result.problems[0]


def test_unreadable_config_is_a_problem() -> None:
    index = make_index()
    result = check_index(index, project.platforms(), {})
    assert len(result.problems) == len(project.platforms())


def test_duplicate_platform() -> None:
    doc = index_doc(attestations=False)
    doc["manifests"].append(dict(doc["manifests"][0], digest="sha256:" + "0" * 64))
    index = parse_index(json.dumps(doc).encode())
    result = check_index(index, project.platforms(), configs_for(index))
    assert any("listed 2 times" in p for p in result.problems)


def test_single_manifest_is_not_a_list() -> None:
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "layers": [],
        }
    ).encode()
    with pytest.raises(ReleaseError, match="single-platform manifest"):
        parse_index(raw)


def test_not_json() -> None:
    with pytest.raises(ReleaseError, match="not JSON"):
        parse_index(b"<html>")
