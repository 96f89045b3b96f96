"""``verify`` inside the candidate's test image: a device verifies a candidate with Docker
alone (no Python, git or root beyond Docker on the device)::

    docker run --rm --network host -u 0 -v /var/run/docker.sock:/var/run/docker.sock \\
        -v ~/.ssh:/keys:ro -v "$PWD":/out REGISTRY/clickvote-test:TAG verify --key /keys/id_ed25519

It runs ``inv verify``'s code (ci/release/verify.py) against the host's engine: the
platform that engine runs (``docker version``/``docker info``), the test image's suite,
the smoke test, the figures; the signed report goes to ``/out/verifications/TAG/``, the
layout ``inv promote`` reads, owned by whoever owns ``/out``. The candidate is the one this
image was published with (``CLICKVOTE_VERIFY_CANDIDATE``, set by ``inv publish``); a TAG
argument or the ``CLICKVOTE_*`` variables of ci/release/config.py choose another.
A device has no checkout to rebuild the candidate from: its report records why
(``NO_REBUILD``), and counts only on platforms that require no rebuild.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ci.release import ReleaseError, config, distribution, verify

NO_REBUILD = "the device verifier (Docker only) has no checkout to rebuild the candidate from"


def candidate_config(environ: dict[str, str]) -> tuple[config.ReleaseConfig, str]:
    """The configuration and tag named by the image's candidate variables, with the
    ``CLICKVOTE_*`` variables over them."""
    values: dict[str, str] = {}
    tag = ""
    if environ.get("CLICKVOTE_VERIFY_CANDIDATE"):
        registry, repository, tag = distribution.split(environ["CLICKVOTE_VERIFY_CANDIDATE"])
        values = {"CLICKVOTE_REGISTRY": registry, "CLICKVOTE_REPOSITORY": repository}
    if environ.get("CLICKVOTE_VERIFY_TESTS"):
        values["CLICKVOTE_TEST_REPOSITORY"] = environ["CLICKVOTE_VERIFY_TESTS"]
    return config.load({}, environ={**values, **environ}), tag


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="verify", description="Verify this image's release candidate on this device."
    )
    p.add_argument("tag", nargs="?", default="", help="candidate tag (default: this image's)")
    p.add_argument("--key", default="/keys/id_ed25519", help="SSH private key that signs")
    p.add_argument("--out", default="/out", help="the report goes to OUT/verifications/TAG/")
    p.add_argument("--platform", default="", help="default: the platform the engine runs")
    p.add_argument("--suite", default="auto", choices=verify.SUITES)
    p.add_argument("--no-rebuild", default=NO_REBUILD, metavar="REASON", help="recorded")
    return p


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    args = parser().parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    try:
        cfg, tag = candidate_config(env)
        tag = args.tag or tag
        if not tag:
            raise ReleaseError("which candidate? this image names none: pass its TAG")
        out = Path(args.out)
        if not out.is_dir():
            raise ReleaseError(f'{out} is not a directory: mount one (-v "$PWD":/out)')
        cfg = cfg.with_overrides(verifications_dir=out / "verifications")
        try:
            verify.verify(
                cfg,
                tag,
                platform=args.platform,
                suite=args.suite,
                key=args.key,
                no_rebuild=args.no_rebuild or NO_REBUILD,
            )
        finally:
            give_back(out, cfg.verifications_dir)
    except ReleaseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def give_back(out: Path, written: Path) -> None:
    """Files written as root into a bind mount belong to the owner of that mount."""
    if os.geteuid() != 0 or not written.exists():
        return
    st = out.stat()
    for root, dirs, files in os.walk(written):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, st.st_uid, st.st_gid)


if __name__ == "__main__":
    sys.exit(main())
