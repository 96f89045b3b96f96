"""Per-platform image figures: in-image suite wall time (emulation cost) and footprint.

Both build their image from the working tree first (as ``nox -s test-<arch>`` does; the
build cache makes an unchanged tree cheap), so a stale image is never measured.

Sizes come from ``docker save`` (OCI layout): compressed = the layer blob sizes in each
platform's manifest, uncompressed = those blobs gunzipped; "added" counts the layers
that the base image's manifest for the same platform does not have. RSS is the sum of
``Rss`` over /proc/1/smaps of PID 1 (the server) in a container started with --network
host on a free 127.0.0.1 port, idle and after a burst of votes; see `RSS_METHOD` for the
platforms that run under QEMU user-mode emulation.
"""

from __future__ import annotations

import json
import platform as host_platform
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from benchmarks.socketbench import SERVER_ENV, free_port, loadgen, setup_env
from ci import build as images
from ci import project

SUITE_TIMEOUT = 600


def emulation(arches: dict[str, str], notes: dict[str, str]) -> dict[str, float]:
    """Wall time per arch; `notes` gets each run's exit status and pytest summary line."""
    out: dict[str, float] = {}
    for arch, platform in arches.items():
        # Always built: an image left by an earlier build would run an earlier tree's tests.
        with images.loaded_test_image(platform, arch) as ref:
            cmd = ["docker", "run", "--rm", "--network", "host"]
            cmd += [*project.platform_args(platform), ref]
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


RSS_METHOD = (
    "RSS of an emulated platform: QEMU user-mode emulation runs the server inside the qemu "
    "process, whose RSS also holds QEMU's binary, its translated-code buffer and its heap. "
    "The guest's share is the Rss of the mappings below QEMU's own (QEMU places the guest "
    "address space at the bottom: guest_base 0, or the 4 GiB it reserves for a 32-bit "
    "guest; its own static-pie binary, brk heap and mmaps sit far above), from "
    "/proc/1/smaps; raw = the whole qemu process. Check: the amd64 image's server run "
    "under the host's qemu-x86_64 (estimate) against the same image run natively."
)
_SMAPS_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+ *(.*)$")


@dataclass
class Mapping:
    start: int
    end: int
    perms: str
    path: str  # file, [heap]/[stack]/..., or "" (anonymous)
    rss_kb: int = 0


def parse_smaps(text: str) -> list[Mapping]:
    maps: list[Mapping] = []
    for line in text.splitlines():
        m = _SMAPS_HEADER.match(line)
        if m:
            maps.append(Mapping(int(m[1], 16), int(m[2], 16), m[3], m[4].strip()))
        elif line.startswith("Rss:") and maps:
            maps[-1].rss_kb = int(line.split()[1])
    return maps


def guest_rss_kb(maps: list[Mapping]) -> int | None:
    """Rss of the emulated program's own mappings in a qemu-user process, None if unsure.

    QEMU maps guest pages without host PROT_EXEC (guest code is translated, never run), so
    the only executable file is the emulator itself. Everything from the lowest of its
    mappings and its brk heap upwards (QEMU's code, heap, translated-code buffer, malloc
    arenas, thread stacks) and the kernel's [vdso]/[vvar]/... is QEMU's; the guest's
    address space lies below (guest_base at the bottom of the host's). None unless exactly
    one executable file is mapped (natively, every library is) and every other file lies
    below that boundary.
    """
    exe = {m.path for m in maps if "x" in m.perms and m.path.startswith("/")}
    if len(exe) != 1:
        return None
    own = [m.start for m in maps if m.path in exe or m.path == "[heap]"]
    boundary = min(own)
    files = [m for m in maps if m.path.startswith("/") and m.path not in exe]
    if not files or any(m.end > boundary for m in files):
        return None
    return sum(m.rss_kb for m in maps if m.end <= boundary and not m.path.startswith("["))


def _smaps(container: str) -> list[Mapping]:
    r = subprocess.run(
        ["docker", "exec", container, "cat", "/proc/1/smaps"],
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_smaps(r.stdout)


def rss_of(container: str, emulated: bool) -> tuple[float, float | None]:
    """(whole process MB, guest estimate MB or None) from one reading of /proc/1/smaps."""
    maps = _smaps(container)
    total = sum(m.rss_kb for m in maps) / 1024
    if not emulated:
        return total, None
    guest = guest_rss_kb(maps)
    return total, None if guest is None else guest / 1024


def native_platform() -> str | None:
    machine = host_platform.machine()
    return next((p for p, m in project.MACHINES.items() if m == machine), None)


def host_emulator() -> str | None:
    """The host's static qemu-user binary for its own architecture (for the method check)."""
    machine = host_platform.machine()
    for name in (f"qemu-{machine}-static", f"qemu-{machine}"):
        path = shutil.which(name)
        if path:
            return str(Path(path).resolve())
    return None


def _wait_healthy(url: str, what: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.5)


def start(
    image: str,
    platform: str,
    port: int,
    emulator: str | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Start the server container (under `emulator`, a host qemu binary, if given)."""
    name = f"clickvote-bench-{port}"
    cmd = ["docker", "run", "-d", "--rm", "--name", name, *project.platform_args(platform)]
    cmd += ["--network", "host"]
    for k, v in {**SERVER_ENV, **(env or {})}.items():
        cmd += ["-e", f"{k}={v}"]
    args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    if emulator is None:
        cmd += [image, *args]
    else:
        cmd += ["-v", f"{emulator}:/qemu-user:ro", "--entrypoint", "sh", image, "-c"]
        cmd += ['exec /qemu-user "$(command -v python3)" -m clickvote "$@"', "sh", *args]
    subprocess.run(cmd, check=True, capture_output=True)
    return name


def rss(image: str, platform: str, load_seconds: float = 5) -> dict[str, Any]:
    """Idle and loaded RSS; for an emulated platform the guest estimate, raw beside it."""
    emulated = platform != native_platform()
    port = free_port()
    name = start(image, platform, port)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, f"{image} ({platform})")
        time.sleep(2)
        idle_raw, idle_guest = rss_of(name, emulated)
        token = setup_env(url)
        res = loadgen(url, token, clients=50, rate=200, duration=load_seconds, tag="rss")
        load_raw, load_guest = rss_of(name, emulated)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    out: dict[str, Any] = {"load_rate": res["rate"], "emulated": emulated}
    if emulated:
        out["idle_raw_mb"], out["load_raw_mb"] = idle_raw, load_raw
    if emulated and (idle_guest is None or load_guest is None):
        print(f"warning: no guest RSS estimate for {platform}: whole qemu process reported")
    out["idle_mb"] = idle_raw if idle_guest is None else idle_guest
    out["load_mb"] = load_raw if load_guest is None else load_guest
    out["guest_estimate"] = emulated and idle_guest is not None and load_guest is not None
    return out


def rss_method_check(image: str, native_idle_mb: float) -> dict[str, float]:
    """The guest estimate of the native image's server run under the host's own qemu-user,
    against its native idle RSS: how far the estimate is from the truth on this host."""
    platform, emulator = native_platform(), host_emulator()
    if platform is None or emulator is None:
        raise RuntimeError("no qemu-user binary for the host's architecture (qemu-user-static)")
    port = free_port()
    name = start(image, platform, port, emulator=emulator)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", f"{image} under {emulator}")
        time.sleep(2)
        raw, guest = rss_of(name, emulated=True)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    if guest is None:
        raise RuntimeError(f"no guest RSS estimate for the server under {emulator}")
    return {"native_mb": native_idle_mb, "estimate_mb": guest, "raw_mb": raw}


def build_app_image(ref: str) -> None:
    """The app image for every platform, from the working tree (as ``inv build --load``)."""
    images.build(images.BuildOptions(platforms=project.platforms(), load=True, tag=ref))


def footprint() -> dict[str, dict[str, Any]]:
    image = images.image_ref("app")
    build_app_image(image)
    base = project.local_base_image()
    out: dict[str, dict[str, Any]] = dict(sizes(image, base))
    for platform in project.platforms():
        out.setdefault(platform, {}).update(rss(image, platform))
    native = out.get(native_platform() or "", {})
    if any(d.get("emulated") for d in out.values()) and "idle_mb" in native:
        try:
            out["rss_method_check"] = rss_method_check(image, native["idle_mb"])
        except (RuntimeError, subprocess.CalledProcessError) as e:
            print(f"warning: guest RSS method check failed: {e}")
    return out


if __name__ == "__main__":
    print(json.dumps(footprint(), indent=1))
