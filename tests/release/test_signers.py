"""The revocation list, signing times and allowed_signers names (pure: no ssh-keygen)."""

from __future__ import annotations

import base64

import pytest

from ci.release import ReleaseError, reports, signers
from ci.release.quorum import check_report
from ci.release.signing import Signature

from .factories import TAG, TEST_IMAGES, key_of, make_index, make_report

REVOKED = """
# signer or key, from, reason
alice@example.invalid 2026-11-01T00:00:00Z left the project
SHA256:bobkey 2026-12-01 rotated to a new key
"""


def test_revocations_apply_from_their_time() -> None:
    rs = signers.parse_revoked(REVOKED)
    t = signers.parse_time
    assert [r.signer for r in rs] == ["alice@example.invalid", "SHA256:bobkey"]
    assert rs[1].since == t("2026-12-01T00:00:00Z") and rs[1].reason == "rotated to a new key"
    alice = signers.revoked(rs, "alice@example.invalid", "SHA256:any", t("2026-11-01"))
    assert alice.startswith("signer alice@example.invalid revoked from 2026-11-01T00:00:00Z")
    assert "(left the project)" in alice
    assert not signers.revoked(rs, "alice@example.invalid", "SHA256:any", t("2026-10-31T23:59"))
    bob = signers.revoked(rs, "bob@example.invalid", "SHA256:bobkey", t("2026-12-02"))
    assert bob.startswith("key SHA256:bobkey of bob@example.invalid revoked")
    assert not signers.revoked(rs, "bob@example.invalid", "SHA256:newkey", t("2026-12-02"))
    unknown = signers.revoked(rs, "alice@example.invalid", "SHA256:any", None)
    assert "signed at an unknown time" in unknown


@pytest.mark.parametrize(
    "text", ["alice@example.invalid 2026-11-01", "alice@example.invalid yesterday lost it"]
)
def test_malformed_revocation_stops(text: str) -> None:
    with pytest.raises(ReleaseError, match="revoked:1"):
        signers.parse_revoked(text)


def test_signing_time() -> None:
    assert signers.ssh_time(signers.parse_time("2026-11-02T13:14:15+01:00")) == "20261102121415Z"
    assert signers.signing_time({"signed_at": "2026-11-02T12:00:00Z"}) == signers.parse_time(
        "2026-11-02T12:00:00"
    )
    assert signers.signing_time({"started_at": "2026-11-02"}) is not None  # older reports
    assert signers.signing_time({}) is None and signers.signing_time("x") is None
    bad = make_report(make_index(), "linux/arm64", signed_at="last tuesday")
    assert "signed_at is not an ISO 8601 time" in reports.structural_problems(bad)


def test_principals_of_a_key() -> None:
    blob = b"\x00\x00\x00\x0bssh-ed25519" + bytes(36)
    b64 = base64.b64encode(blob).decode()
    text = (
        "# comment\n"
        f'alice@example.invalid,al@example.invalid namespaces="x" ssh-ed25519 {b64}\n'
        f'bob@example.invalid valid-before="20260101" ssh-ed25519 {b64} bob\n'
    )
    key = signers.fingerprint(blob)
    assert signers.principals_of(text, key) == [
        "alice@example.invalid",
        "al@example.invalid",
        "bob@example.invalid",
    ]
    assert signers.principals_of(text, "SHA256:other") == []


def test_ignored_report_is_shown_neither_counted_nor_blocking() -> None:
    index = make_index()
    report = make_report(index, "linux/arm64", signed_at="2026-11-02T00:00:00Z", result="fail")
    sig = Signature(True, principal="alice@example.invalid", key=key_of("alice"))
    revocations = signers.parse_revoked(REVOKED)
    c = check_report("r.json", report, sig, TAG, index, TEST_IMAGES, revocations)
    assert c.ok and not c.counts and "revoked from 2026-11-01" in c.ignored
    outside = Signature(True, "alice@example.invalid", key=key_of("alice"), outside="expired")
    c = check_report("r.json", report, outside, TAG, index, TEST_IMAGES)
    assert c.ok and c.ignored == "expired" and not c.counts
