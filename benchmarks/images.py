"""Per-platform image figures: in-image suite wall time (emulation cost) and footprint.

Sizes come from ``docker save`` (OCI layout): compressed = the layer blob sizes in each
platform's manifest, uncompressed = those blobs gunzipped; "added" counts the layers
that the base image's manifest for the same platform does not have. RSS is VmRSS of
PID 1 (the server) in a container started with --network host on a free 127.0.0.1 port,
idle and after a burst of votes.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import requests

from benchmarks.socketbench import free_port, loadgen, setup_env
from ci import build as images
from ci import project

SUITE_TIMEOUT = 600


def build_test_image(platform: str, ref: str) -> None:
    """The same code path as ``nox -s test-<arch>``."""
    opts = images.BuildOptions(platforms=[platform], target="test", load=True, tag=ref)
    images.build(opts)


def emulation(arches: dict[str, str], notes: dict[str, str]) -> dict[str, float]:
    """Wall time per arch; `notes` gets each run's exit status and pytest summary line."""
    out: dict[str, float] = {}
    for arch, platform in arches.items():
        ref = f"{images.image_ref('test')}-{arch}"
        if not images.image_present(ref):
            build_test_image(platform, ref)
        cmd = ["docker", "run", "--rm", "--network", "host", "--platform", platform, ref]
        cmd += ["python3", "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "not host"]
        # a module that cannot be imported in the image must not turn the run into a no-op
        cmd += ["--continue-on-collection-errors"]
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=SUITE_TIMEOUT)
        out[arch] = time.monotonic() - t0
        summary = (r.stdout.strip().splitlines() or ["?"])[-1]
        notes[arch] = f"exit {r.returncode}: {summary}"
        if r.returncode != 0:
            print(f"warning: suite in {ref} exited {r.returncode}: {r.stdout[-400:]}")
    return out


def _manifests(tar: tarfile.TarFile) -> dict[str, dict[str, Any]]:
    """platform -> image manifest, from an OCI layout written by docker save."""

    def blob(digest: str) -> dict[str, Any]:
        f = tar.extractfile("blobs/" + digest.replace(":", "/"))
        assert f is not None
        return dict(json.load(f))

    f = tar.extractfile("index.json")
    assert f is not None
    todo = list(json.load(f)["manifests"])
    out: dict[str, dict[str, Any]] = {}
    while todo:
        d = todo.pop()
        mt = d.get("mediaType", "")
        if "index" in mt or "manifest.list" in mt:
            todo += blob(d["digest"])["manifests"]
        elif "manifest" in mt:
            p = d.get("platform")
            if p is None:
                cfg = blob(blob(d["digest"])["config"]["digest"])
                p = {"os": cfg["os"], "architecture": cfg["architecture"]}
                if cfg.get("variant"):
                    p["variant"] = cfg["variant"]
            if p.get("os") == "unknown":
                continue  # attestations
            name = "/".join(x for x in (p["os"], p["architecture"], p.get("variant")) if x)
            out[name] = blob(d["digest"])
    return out


def _gunzipped_size(tar: tarfile.TarFile, digest: str) -> int:
    f = tar.extractfile("blobs/" + digest.replace(":", "/"))
    assert f is not None
    d = zlib.decompressobj(32 + zlib.MAX_WBITS)
    n = 0
    while chunk := f.read(1 << 20):
        n += len(d.decompress(chunk))
    return n + len(d.flush())


def sizes(image: str, base: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, ref in (("app", image), ("base", base)):
            paths[name] = Path(tmp) / f"{name}.tar"
            subprocess.run(["docker", "save", "-o", str(paths[name]), ref], check=True)
        with tarfile.open(paths["app"]) as app, tarfile.open(paths["base"]) as bt:
            app_m, base_m = _manifests(app), _manifests(bt)
            for platform in project.platforms():
                m = app_m.get(platform)
                if m is None:
                    continue
                base_layers = {x["digest"] for x in base_m.get(platform, {}).get("layers", [])}
                layers = m["layers"]
                unc = {x["digest"]: _gunzipped_size(app, x["digest"]) for x in layers}
                added = [x for x in layers if x["digest"] not in base_layers]
                out[platform] = {
                    "compressed_mb": sum(x["size"] for x in layers) / 1e6,
                    "uncompressed_mb": sum(unc.values()) / 1e6,
                    "added_compressed_mb": sum(x["size"] for x in added) / 1e6,
                    "added_uncompressed_mb": sum(unc[x["digest"]] for x in added) / 1e6,
                }
    return out


def _rss_mb(container: str) -> float:
    r = subprocess.run(
        ["docker", "exec", container, "grep", "VmRSS", "/proc/1/status"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(r.stdout.split()[1]) / 1024


def rss(image: str, platform: str, load_seconds: float = 5) -> dict[str, float]:
    port = free_port()
    name = f"clickvote-bench-{port}"
    env = []
    for k, v in {
        "CLICKVOTE_RATE_VOTER_BURST": "1000000",
        "CLICKVOTE_RATE_VOTER_PER_SEC": "1000000",
        "CLICKVOTE_RATE_IP_BURST": "1000000",
        "CLICKVOTE_RATE_IP_PER_SEC": "1000000",
        "CLICKVOTE_BCRYPT_ROUNDS": "4",
        "CLICKVOTE_LOG_LEVEL": "warning",
    }.items():
        env += ["-e", f"{k}={v}"]
    cmd = ["docker", "run", "-d", "--rm", "--name", name, "--platform", platform]
    cmd += ["--network", "host", *env, image, "serve", "--host", "127.0.0.1", "--port", str(port)]
    subprocess.run(cmd, check=True, capture_output=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{image} ({platform}) did not start")
            time.sleep(0.5)
        time.sleep(2)
        idle = _rss_mb(name)
        token = setup_env(url)
        res = loadgen(url, token, clients=50, rate=200, duration=load_seconds, tag="rss")
        loaded = _rss_mb(name)
        return {"idle_mb": idle, "load_mb": loaded, "load_rate": res["rate"]}
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def footprint() -> dict[str, dict[str, float]]:
    image = images.image_ref("app")
    base = images.var("LOCAL_BASE_IMAGE")
    out = sizes(image, base)
    for platform in project.platforms():
        out.setdefault(platform, {}).update(rss(image, platform))
    return out


if __name__ == "__main__":
    print(json.dumps(footprint(), indent=1))
