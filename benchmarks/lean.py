"""The runtime's footprint beside a reference commit's, measured the same way in one run.

``inv bench --reference REF``: the reference tree comes from ``git archive REF`` (a temp
dir); both trees are measured natively (``python -m clickvote serve`` with the venv's
Python, each tree first on PYTHONPATH) and in their images (built for the chosen
platforms, tagged ``clickvote-bench:current`` / ``clickvote-bench:ref-REF``), with:

- start (wall time; the CPU time the server used until then beside it, steadier on a busy
  machine): from ``clickvote serve``'s process start (``/proc/PID/stat`` field 22, the
  kernel's boot-time clock that the host shares with its containers, so container
  set-up is not counted) to the first ``/healthz`` answer (polled every 10 ms), the
  median of `STARTS` starts natively (the first on an empty data directory, then
  restarts on it), of `IMAGE_STARTS` in an image (each on a new /data volume);
- idle RSS 2 s after that answer and RSS after `VOTES` votes offered over Socket.IO
  (benchmarks/loadgen.py), natively from /proc/PID/smaps, in images as in
  benchmarks/images.py (smaps of PID 1; the guest's share under QEMU);
- what the image adds over its base (benchmarks/images.py's sizes, from docker save).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import images
from benchmarks.socketbench import PY, SERVER_ENV, free_port, loadgen, setup_env, stop
from ci import build, project

# main before the lean runtime work (issue 13 item 4): the default reference
REFERENCE = "b281e45"
IMAGE = "clickvote-bench"
VOTES = 1000
STARTS = 5  # natively
IMAGE_STARTS = 3  # in an image (an emulated start takes seconds)
TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(stat: str) -> list[str]:
    """/proc/PID/stat from field 3 on (the name, field 2, may hold spaces and ")")."""
    return stat[stat.rindex(")") + 2 :].split()


def started(stat: str) -> float:
    """A process's start, seconds since boot, from the text of /proc/PID/stat."""
    return int(_stat_fields(stat)[19]) / TICKS  # field 22


def cpu_seconds(stat: str) -> float:
    """User + system CPU time the process has used (fields 14 and 15)."""
    f = _stat_fields(stat)
    return (int(f[11]) + int(f[12])) / TICKS


def since_boot() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def first_answer(url: str, alive: Callable[[], bool], timeout: float = 300) -> float:
    """The boot-clock time of the first 200 from url + /healthz."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the server for {url} exited")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return since_boot()
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def smaps_rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/smaps").read_text()
    return sum(m.rss_kb for m in images.parse_smaps(text)) / 1024


def _votes(url: str) -> dict[str, Any]:
    """`VOTES` votes offered (50 sockets, 200/s for 5 s), bounded by loadgen's own limits."""
    return loadgen(url, setup_env(url), clients=50, rate=200, duration=VOTES / 200, tag="lean")


def native(root: Path) -> dict[str, Any]:
    """The tree at `root` served natively: start times, idle RSS, RSS after the votes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKVOTE_")}
    env.update(SERVER_ENV, PYTHONPATH=str(root))
    # as installed: byte-compiled (a checkout run with PYTHONDONTWRITEBYTECODE has no pycs)
    compile_cmd = [PY, "-m", "compileall", "-q", "-j0", str(root / "clickvote")]
    subprocess.run(compile_cmd, check=True, env=env)
    out: dict[str, Any] = {"starts_s": [], "cpus_s": []}
    with tempfile.TemporaryDirectory(prefix="clickvote-lean-") as data:
        for i in range(STARTS):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            cmd = [PY, "-m", "clickvote", "serve", "--port", str(port), "--data-dir", data]
            proc = subprocess.Popen(cmd, cwd=data, env=env)
            try:
                answered = first_answer(url, partial(_alive, proc))
                stat = Path(f"/proc/{proc.pid}/stat").read_text()
                out["starts_s"].append(answered - started(stat))
                out["cpus_s"].append(cpu_seconds(stat))
                if i == STARTS - 1:
                    time.sleep(2)
                    out["idle_mb"] = smaps_rss_mb(proc.pid)
                    res = _votes(url)
                    out["load_mb"], out["acked"] = smaps_rss_mb(proc.pid), res["acked"]
            finally:
                stop(proc)
    out["start_s"] = statistics.median(out["starts_s"])
    out["cpu_s"] = statistics.median(out["cpus_s"])
    return out


def in_image(image: str, platform: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The image's server on `platform`: start times, idle RSS, RSS after the votes."""
    emulated = platform != images.native_platform()
    out: dict[str, Any] = {"starts_s": [], "cpus_s": [], "emulated": emulated}
    for i in range(IMAGE_STARTS):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        name = images.start(image, platform, port, env=env)
        try:
            answered = first_answer(url, partial(_running, name))
            stat = subprocess.run(
                ["docker", "exec", name, "cat", "/proc/1/stat"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            out["starts_s"].append(answered - started(stat))
            out["cpus_s"].append(cpu_seconds(stat))
            if i == IMAGE_STARTS - 1:
                time.sleep(2)
                out["idle_raw_mb"], guest = images.rss_of(name, emulated)
                out["idle_mb"] = guest if guest is not None else out["idle_raw_mb"]
                res = _votes(url)
                out["load_raw_mb"], guest = images.rss_of(name, emulated)
                out["load_mb"] = guest if guest is not None else out["load_raw_mb"]
                out["acked"] = res["acked"]
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    out["start_s"] = statistics.median(out["starts_s"])
    out["cpu_s"] = statistics.median(out["cpus_s"])
    return out


def _alive(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is None


def _running(name: str) -> bool:
    fmt = ["docker", "inspect", "--format", "{{.State.Running}}", name]
    r = subprocess.run(fmt, capture_output=True, text=True)
    return r.stdout.strip() == "true"


def export_tree(ref: str, dest: Path) -> str:
    """`git archive ref` unpacked into dest; returns the commit's short hash."""
    git = ["git", "-C", str(project.ROOT)]
    commit = subprocess.run(
        [*git, "rev-parse", "--short", f"{ref}^{{commit}}"], capture_output=True, text=True
    )
    if commit.returncode != 0:
        raise build.BuildError(f"--reference {ref!r} is not a commit of this repository")
    archive = subprocess.Popen([*git, "archive", ref], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise build.BuildError(f"git archive {ref} failed")
    return commit.stdout.strip()


def tree_commit() -> str:
    """This tree's commit (short hash), marked "+changes" where files differ from it."""
    git = ["git", "-C", str(project.ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    status = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True)
    name = head.stdout.strip() or "an unknown commit"
    return name + ("+changes" if status.stdout.strip() else "")


def build_image(root: Path, tag: str, platforms: list[str], base: str) -> None:
    opts = build.BuildOptions(platforms=platforms, load=True, tag=tag, base=base, root=root)
    build.build(opts)


def compare(
    reference: str = REFERENCE,
    platforms: list[str] | None = None,
    base: str = "auto",
    nopyc: str = "",
) -> dict[str, Any]:
    """Both trees natively and in their images; `nopyc`: also the current image on that
    platform with its pyc files out of reach (PYTHONPYCACHEPREFIX on an empty dir)."""
    platforms = platforms or project.platforms()
    out: dict[str, Any] = {"platforms": platforms}
    with tempfile.TemporaryDirectory(prefix="clickvote-ref-") as tmp:
        ref_root = Path(tmp)
        short = export_tree(reference, ref_root)
        trees = {"current": project.ROOT, "reference": ref_root}
        out["ref_commit"] = short
        out["commit"] = tree_commit()
        tags = {"current": f"{IMAGE}:current", "reference": f"{IMAGE}:ref-{short}"}
        for which, root in trees.items():
            out[which] = {"native": native(root)}
            build_image(root, tags[which], platforms, base)
    base_ref = build.resolve_base(base)[0]
    for which, tag in tags.items():
        sizes = images.sizes(tag, base_ref)
        for platform in platforms:
            d = in_image(tag, platform)
            d.update(sizes.get(platform, {}))
            out[which][platform] = d
    if nopyc:
        env = {"PYTHONPYCACHEPREFIX": "/tmp/no-pyc"}
        out["nopyc"] = {nopyc: in_image(tags["current"], nopyc, env=env)}
    return out
