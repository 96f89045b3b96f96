"""``inv bench``: every runtime benchmark, one table, benchmarks/RESULTS.md and results.png.

Figures are measured, never adjusted; a missed goal shows as "MISSED" in the table.
"""

from __future__ import annotations

import math
import platform as host_platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import hotbench, images, lean, socketbench
from ci import project

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    figure: str
    value: float
    unit: str
    baseline: str
    goal: str
    ok: bool | None  # None: no goal

    def cells(self) -> list[str]:
        status = "" if self.ok is None else ("met" if self.ok else "MISSED")
        v = "n/a" if math.isnan(self.value) else f"{self.value:,.1f} {self.unit}"
        return [self.figure, v, self.baseline, self.goal, status]


def _section(name: str, fn: Callable[[], Any], errors: list[str]) -> Any:
    t0 = time.monotonic()
    print(f"== {name} ...", flush=True)
    try:
        return fn()
    except Exception as e:
        errors.append(f"{name}: {type(e).__name__}: {e}")
        print(f"   failed: {e}", flush=True)
        return None
    finally:
        print(f"   ({time.monotonic() - t0:.0f} s)", flush=True)


SECTIONS = ("vote", "workers", "fanout", "hot", "emulation", "footprint", "lean")


def acked_share(run: dict[str, Any]) -> float:
    """Acknowledged votes / votes sent (each sent vote ends acked or as an error)."""
    sent = run["acked"] + run["errors"]
    return run["acked"] / sent if sent else float("nan")


@dataclass
class LeanOptions:
    """The same-run comparison (benchmarks/lean.py): reference commit, platforms, and the
    platform (if any) measured again without its pyc files."""

    reference: str = lean.REFERENCE
    platforms: list[str] | None = None  # None: every platform of docker-bake.hcl
    nopyc: str = ""


def collect(
    with_build: bool = False,
    base: str = "auto",
    only: tuple[str, ...] = SECTIONS,
    lean_opts: LeanOptions | None = None,
) -> tuple[list[Row], dict, list[str]]:
    rows: list[Row] = []
    errors: list[str] = []
    raw: dict[str, Any] = {}
    vp = (
        _section("vote path", lambda: socketbench.vote_path(errors=errors), errors)
        if "vote" in only
        else None
    )
    if vp:
        raw["vote_path"] = vp
        rows += vote_rows(vp)
    wk = _section("workers", socketbench.workers_path, errors) if "workers" in only else None
    if wk:
        raw["workers"] = wk
        rows += workers_rows(wk)
    fo = _section("fan-out", socketbench.fanout, errors) if "fanout" in only else None
    if fo:
        raw["fanout"] = fo
        n = fo["watchers"]
        rows += [
            Row(f"fan-out to {n} sockets p50", fo["p50"], "ms", "", "", None),
            Row(f"fan-out to {n} sockets p99", fo["p99"], "ms", "", "< 100 ms", fo["p99"] < 100),
            Row("fan-out deliveries", 100 * fo["delivered"] / fo["expected"], "%", "", "100 %",
                fo["delivered"] == fo["expected"]),
        ]  # fmt: skip
    hot = _section("hot item", hotbench.hot_item, errors) if "hot" in only else None
    if hot:
        raw["hot_item"] = hot
        rows += hot_rows(hot)
    notes: dict[str, str] = {}
    emu = None
    if "emulation" in only:
        emu = _section("in-image suite", lambda: images.emulation(project.arches(), notes), errors)
    if emu:
        raw["emulation"] = emu
        raw["emulation_notes"] = notes
        errors += [
            f"in-image suite {a}: {n}" for a, n in notes.items() if not n.startswith("exit 0")
        ]
        native = emu.get("amd64", float("nan"))
        for arch, secs in emu.items():
            rows.append(
                Row(f"suite wall time {arch}", secs, "s", f"{native:.1f} s (amd64)", "", None)
            )
            if arch != "amd64":
                ratio = secs / native
                rows.append(Row(f"emulation ratio {arch}", ratio, "x", "1 x", "<= 6 x", ratio <= 6))
    fp = _section("footprint", images.footprint, errors) if "footprint" in only else None
    if fp:
        raw["footprint"] = fp
        for platform, d in fp.items():
            if platform not in project.platforms():
                continue  # rss_method_check, below
            a = project.arch_name(platform)
            if "uncompressed_mb" in d:
                rows += [
                    Row(f"image {a} uncompressed", d["uncompressed_mb"], "MB", "", "", None),
                    Row(f"image {a} compressed", d["compressed_mb"], "MB", "", "", None),
                    Row(f"image {a} adds over base", d["added_uncompressed_mb"], "MB",
                        f"{d['added_compressed_mb']:.1f} MB gz", "< 40 MB",
                        d["added_uncompressed_mb"] < 40),
                ]  # fmt: skip
            if "idle_mb" in d:
                # emulated: the guest's own RSS (images.RSS_METHOD), the qemu process beside it
                what = ""
                qemu_idle = qemu_load = ""
                if d.get("emulated"):
                    what = " (guest est.)" if d.get("guest_estimate") else " (qemu process)"
                    qemu_idle = f"qemu process {d['idle_raw_mb']:.1f} MB"
                    qemu_load = f"; qemu process {d['load_raw_mb']:.1f} MB"
                rows += [
                    Row(f"idle RSS {a}{what}", d["idle_mb"], "MB", qemu_idle, "< 60 MB",
                        d["idle_mb"] < 60),
                    Row(f"RSS under load {a}{what}", d["load_mb"], "MB",
                        f"{d['load_rate']:.0f} votes/s{qemu_load}", "", None),
                ]  # fmt: skip
        check = fp.get("rss_method_check")
        if check:
            a = project.arch_name(images.native_platform() or "")
            diff = check["estimate_mb"] - check["native_mb"]
            rows.append(
                Row(f"guest est. check: {a} under QEMU", check["estimate_mb"], "MB",
                    f"native {check['native_mb']:.1f} MB", "within 3 MB", abs(diff) <= 3)
            )  # fmt: skip
    if "lean" in only:
        lo = lean_opts or LeanOptions()
        cmp = _section(
            f"lean runtime vs {lo.reference}",
            lambda: lean.compare(lo.reference, lo.platforms, base, lo.nopyc),
            errors,
        )
        if cmp:
            raw["lean"] = cmp
    if with_build:
        from benchmarks import build

        res = _section("build", lambda: build.run(base=base), errors)
        if res:
            raw["build"] = [r.__dict__ for r in res]
            for r in res:
                rows.append(Row(f"build: {r.name}", r.seconds, "s",
                                f"{r.emulated_runs} emulated RUN", "", None))  # fmt: skip
    return rows, raw, errors


def vote_rows(vp: dict[str, Any]) -> list[Row]:
    """ClickVote's vote path beside python-socketio's and (where it ran) Node socket.io's
    ack-only servers, measured in the same run."""
    b, f, s = vp["baseline_sat"], vp["fixed"], vp["sat"]
    node = vp.get("node_sat")
    nan = float("nan")
    node_rate, node_cpu = (node["rate"], node["cpu_us"]) if node else (nan, nan)
    return [
        Row("votes/s at saturation", s["rate"], "/s",
            f"python-socketio {b['rate']:,.0f}/s; Node {node_rate:,.0f}/s",
            "> python-socketio's", s["rate"] > b["rate"]),
        Row("saturation vs Node socket.io", 100 * s["rate"] / node_rate, "%", "100 %",
            ">= 50 %", s["rate"] >= 0.5 * node_rate),
        Row("server CPU per acked vote", s["cpu_us"], "us",
            f"python-socketio {b['cpu_us']:,.0f} us; Node {node_cpu:,.0f} us", "<= 90 us",
            s["cpu_us"] <= 90),
        Row("ack p50 at saturation", s["p50"], "ms", f"{b['p50']:.1f} ms", "", None),
        # every vote offered at 1,000/s acknowledged (how late: the latency rows); a rate
        # over the run's wall time would count the last acks' latency as lost throughput
        Row("acked of offered at 1,000/s", 100 * acked_share(f), "%",
            f"{100 * acked_share(vp['baseline_fixed']):.1f} %", "100 %", acked_share(f) == 1),
        Row("ack p50 at 1,000/s", f["p50"], "ms", f"{vp['baseline_fixed']['p50']:.1f} ms", "",
            None),
        Row("ack p99 at 1,000/s", f["p99"], "ms", f"{vp['baseline_fixed']['p99']:.1f} ms",
            "< 20 ms", f["p99"] < 20),
    ]  # fmt: skip


def workers_rows(wk: dict[str, Any]) -> list[Row]:
    """`--workers 2` beside `--workers 1`, measured in the same run by the same load."""
    one, two = wk["workers_1"], wk["workers_2"]
    return [
        Row("votes/s at saturation, --workers 2", two["rate"], "/s",
            f"--workers 1 {one['rate']:,.0f}/s", "", None),
        Row("server CPU per acked vote, --workers 2 (all processes)", two["cpu_us"], "us",
            f"--workers 1 {one['cpu_us']:,.0f} us", "", None),
    ]  # fmt: skip


def servers_table(vp: dict[str, Any]) -> str:
    """The three servers' saturation rows side by side (the issue's table)."""
    names = (("sat", "ClickVote (durable SQLite)"), ("baseline_sat", "python-socketio, ack only"),
             ("node_sat", "Node socket.io, ack only (no storage)"))  # fmt: skip
    lines = ["| server | votes/s | server CPU per acked vote |", "| --- | --- | --- |"]
    for key, name in names:
        r = vp.get(key)
        if r:
            lines.append(f"| {name} | {r['rate']:,.0f} | {r['cpu_us']:,.0f} us |")
    return "\n".join(lines)


def hot_rows(hot: dict[str, Any]) -> list[Row]:
    """The coalesced server (window 100 ms) beside the same server with window 0; the vote
    rate compared with one watcher's."""
    single, co, un = hot["single"], hot["coalesced"], hot["uncoalesced"]
    n = co["watchers"]
    pair = f"{n} watchers, window 100 ms (baseline: 0)"
    return [
        Row(f"hot item votes/s acked, {pair}", co["votes_per_s"], "/s",
            f"{un['votes_per_s']:,.0f}/s (window 0); 1 watcher {single['votes_per_s']:,.0f}/s",
            ">= 80 % of 1 watcher's", co["votes_per_s"] >= 0.8 * single["votes_per_s"]),
        Row(f"hot item frames/s sent, {pair}", co["frames_per_s"], "/s",
            f"{un['frames_per_s']:,.0f}/s", "", None),
        Row(f"hot item update lag p50, {pair}", co["lag_p50"], "ms",
            f"{un['lag_p50']:,.0f} ms", "", None),
        Row(f"hot item update lag p99, {pair}", co["lag_p99"], "ms",
            f"{un['lag_p99']:,.0f} ms", "< 250 ms", co["lag_p99"] < 250),
        Row(f"hot item update lag p99 from the ack (a lower bound), {pair}",
            co["lag_acked_p99"], "ms", f"{un['lag_acked_p99']:,.0f} ms", "", None),
        Row(f"hot item update lag p99 as the watchers' processes read it, {pair}",
            co["lag_read_p99"], "ms", f"{un['lag_read_p99']:,.0f} ms", "", None),
        Row(f"hot item server CPU, {pair}", 100 * co["cpu_cores"], "% of a core",
            f"{100 * un['cpu_cores']:.0f} % of a core", "", None),
        Row(f"hot item updates never shown, {pair}", 100 * co["unseen"], "%",
            f"{100 * un['unseen']:.1f} %", "0 %", co["unseen"] == 0),
        Row(f"hot item frames without a kernel arrival stamp (read time used), {pair}",
            100 * co["unstamped"], "%", f"{100 * un['unstamped']:.1f} %",
            "", None),
        Row(f"hot item ack p99, {pair}", co["ack_p99"], "ms",
            f"{un['ack_p99']:,.0f} ms; 1 watcher {single['ack_p99']:,.0f} ms", "", None),
        Row(f"hot item server waiting for a CPU, {pair}", 100 * co["cpu_wait_cores"],
            "% of a core", f"{100 * un['cpu_wait_cores']:.0f} % of a core", "", None),
        Row(f"hot item watchers' CPU, {pair}", 100 * co["watchers_cpu_cores"], "% of a core",
            f"{100 * un['watchers_cpu_cores']:.0f} % of a core", "", None),
        Row(f"hot item load average, {pair}", co["load_average"], "",
            f"{un['load_average']:.1f}", "", None),
    ]  # fmt: skip


def lean_rows(cmp: dict[str, Any]) -> list[Row]:
    """The current tree beside the reference's, natively and in each platform's image."""
    cur, ref, commit = cmp["current"], cmp["reference"], cmp["ref_commit"]

    def pair(figure: str, key: str, unit: str, d: str, goal: str = "", limit: float = 0) -> Row:
        now, then = cur[d].get(key, math.nan), ref[d].get(key, math.nan)
        ok = None if not goal else bool(now <= limit)
        if unit == "s":  # times in ms: a tenth of a second is too coarse for a start
            now, then, unit, limit = 1000 * now, 1000 * then, "ms", 1000 * limit
        return Row(figure, now, unit, f"{then:,.1f} {unit} ({commit})", goal, ok)

    native = project.arch_name(images.native_platform() or "") or "host"
    rows = [
        pair(f"serve to /healthz, native {native}", "start_s", "s", "native", "<= 500 ms", 0.5),
        pair(f"CPU until /healthz, native {native}", "cpu_s", "s", "native"),
        pair(f"idle RSS, native {native}", "idle_mb", "MB", "native", "<= 32 MB", 32),
        pair(f"RSS after {lean.VOTES:,} votes, native {native}", "load_mb", "MB", "native"),
    ]
    for platform in cmp["platforms"]:
        a = project.arch_name(platform)
        emulated = cur[platform].get("emulated")
        how = " (emulated)" if emulated else ""
        est = " (guest est.)" if emulated else ""
        rows += [
            pair(f"serve to /healthz, image {a}{how}", "start_s", "s", platform),
            pair(f"CPU until /healthz, image {a}{how}", "cpu_s", "s", platform),
            pair(f"idle RSS, image {a}{est}", "idle_mb", "MB", platform),
            pair(f"RSS after {lean.VOTES:,} votes, image {a}{est}", "load_mb", "MB", platform),
            pair(f"image {a} adds over base", "added_uncompressed_mb", "MB", platform,
                 "<= 15 MB", 15),
        ]  # fmt: skip
    for platform, d in cmp.get("nopyc", {}).items():
        a = project.arch_name(platform)
        for key, what in (("start_s", "serve to /healthz"), ("cpu_s", "CPU until /healthz")):
            rows.append(
                Row(f"{what}, image {a} without pyc", 1000 * d[key], "ms",
                    f"{1000 * cur[platform][key]:,.1f} ms with pyc", "", None)
            )  # fmt: skip
    return rows


def table(rows: list[Row]) -> str:
    head = ["figure", "measured", "baseline", "goal", "status"]
    cells = [head] + [r.cells() for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = [
        "| " + " | ".join(c[i].ljust(widths[i]) for i in range(len(head))) + " |" for c in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def rounds_line(vp: dict[str, Any]) -> str:
    def rates(key: str) -> str:
        return ", ".join(f"{r:,.0f}" for r in vp[key]["rates"])

    node = f"; Node socket.io {rates('node_sat')}" if "node_sat" in vp else ""
    return (
        f"Saturation, votes/s in each round: ClickVote {rates('sat')}; "
        f"python-socketio {rates('baseline_sat')}{node}."
    )


NOTES = "## Where the CPU per vote goes"  # written by hand (benchmarks/profile.py's figures)


def kept_notes(path: Path) -> str:
    """The hand-written profile notes at the end of RESULTS.md, kept when it is rewritten."""
    text = path.read_text() if path.exists() else ""
    i = text.find("\n" + NOTES)
    return "" if i < 0 else text[i:]


def plot(raw: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    vp = raw.get("vote_path")
    if vp:
        bars = [(k, n) for k, n in (("node_sat", "Node"), ("baseline_sat", "python-socketio"),
                                    ("sat", "ClickVote")) if k in vp]  # fmt: skip
        axes[0].bar([n for _, n in bars], [vp[k]["rate"] for k, _ in bars],
                    color=["grey"] * (len(bars) - 1) + ["C0"])  # fmt: skip
        axes[0].set_title("acked votes/s at saturation")
    fo, lat = raw.get("fanout"), []
    if vp:
        lat = [("p50 @1k/s", vp["fixed"]["p50"]), ("p99 @1k/s", vp["fixed"]["p99"])]
    if fo:
        lat += [("fan-out p50", fo["p50"]), ("fan-out p99", fo["p99"])]
    if lat:
        axes[1].bar([x[0] for x in lat], [x[1] for x in lat], color="C1")
        axes[1].set_title("latency (ms)")
    emu = raw.get("emulation")
    if emu:
        axes[2].bar(list(emu), list(emu.values()), color="C2")
        axes[2].set_title("in-image suite wall time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


LEAN_START, LEAN_END = "<!-- lean: begin -->", "<!-- lean: end -->"


def starts_line(cmp: dict[str, Any]) -> str:
    """Every start's wall time (ms), as measured: the medians above hide how much they move."""
    parts = []
    for which in ("current", "reference"):
        for where, d in cmp[which].items():
            ms = ", ".join(f"{1000 * t:,.0f}" for t in d.get("starts_s", []))
            parts.append(f"{which} {where}: {ms}")
    return "Each start, ms: " + "; ".join(parts) + "."


def write_lean(cmp: dict[str, Any], rows: list[Row], path: Path) -> None:
    """The comparison's own section of RESULTS.md (replaced by each run that measures it)."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    doc = (lean.__doc__ or "").strip()
    body = [
        LEAN_START,
        "## Lean runtime: this tree beside a reference commit, same run",
        "",
        f"Run {when} on {host_platform.machine()}; this tree at "
        f"{cmp.get('commit', 'an unnamed commit')}, reference {cmp['ref_commit']} "
        f"(the baseline column), platforms {', '.join(cmp['platforms'])}.",
        "",
        doc,
        "",
        table(rows),
        "",
        starts_line(cmp),
        LEAN_END,
    ]
    old = path.read_text() if path.exists() else ""
    if LEAN_START in old and LEAN_END in old:
        head, rest = old.split(LEAN_START, 1)
        old = head.rstrip("\n") + "\n" + rest.split(LEAN_END, 1)[1]
    path.write_text(old.rstrip("\n") + "\n\n" + "\n".join(body) + "\n")


def run(
    with_build: bool = False,
    base: str = "auto",
    only: tuple[str, ...] = SECTIONS,
    lean_opts: LeanOptions | None = None,
) -> list[Row]:
    t0 = time.monotonic()
    rows, raw, errors = collect(with_build, base, only, lean_opts)
    errors = list(dict.fromkeys(errors))
    text = table(rows) if rows else ""
    if "vote_path" in raw:
        text = servers_table(raw["vote_path"]) + "\n\n" + text
    lrows = lean_rows(raw["lean"]) if "lean" in raw else []
    print(text)
    if lrows:
        print(table(lrows))
    for e in errors:
        print("error:", e)
    if set(only) != set(SECTIONS):  # a partial run: print only, keep RESULTS.md whole
        if lrows:  # but the comparison's own section is written
            write_lean(raw["lean"], lrows, HERE / "RESULTS.md")
        return rows + lrows
    md = [
        "# ClickVote benchmarks",
        "",
        f"Host: {host_platform.machine()}, {host_platform.platform()}; "
        f"run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
        f"in {time.monotonic() - t0:.0f} s (`inv bench`).",
        "",
        "Vote path: 100 sockets (benchmarks/loadgen.py, own process) against "
        "`python -m clickvote serve` (SQLite, rate limits raised), an ack-only "
        "python-socketio baseline on the same uvicorn stack and an ack-only Node socket.io "
        "server (benchmarks/node), all running, the loads taking turns; each figure is the "
        "median of the rounds. Server CPU per acked vote: the server's CPU time "
        "(/proc/PID/stat, all its threads; with `--workers N`, summed over all its processes) "
        "from the first vote sent to the last answered, over the votes acked. Workers: the same "
        "saturation load against `--workers 1` and `--workers 2`, side by side. Fan-out: "
        "sockets in 4 processes watching one item, latency from emit to arrival. Hot item: "
        "benchmarks/hotbench.py.",
        "",
        *([rounds_line(raw["vote_path"]), ""] if "vote_path" in raw else []),
        *([images.RSS_METHOD, ""] if "footprint" in raw else []),
        text,
        "",
        *(f"- error: {e}" for e in errors),
        "",
        "![results](results.png)",
        "",
    ]
    (HERE / "RESULTS.md").write_text("\n".join(md) + kept_notes(HERE / "RESULTS.md"))
    if lrows:
        write_lean(raw["lean"], lrows, HERE / "RESULTS.md")
    try:
        plot(raw, HERE / "results.png")
    except Exception as e:
        print("plot failed:", e)
    return rows + lrows


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run, of {','.join(SECTIONS)} (default: all); "
        "a partial run prints its table without rewriting RESULTS.md",
    )
    opts = parser.parse_args()
    picked = tuple(s.strip() for s in opts.only.split(",") if s.strip())
    unknown = sorted(set(picked) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    run(only=picked)
