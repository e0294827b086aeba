#!/usr/bin/env python3
"""The capture under a metadata-heavy AI load: an ImageFolder-style small-file loader.

    sudo .venv/bin/python benchmarks/smallfiles.py [--rounds 3] [--seconds 10] [--files 20000]
        [--epoch-files 500000] [--skip-epoch]

Part 1 (steady state). benchmarks/wl_smallfiles.py: 2 forked workers open, fstat, read and
close small files (1-8 KiB, 200 directories, warm page cache) in shuffled order with a few
microseconds of per-sample work, for --seconds. Four variants run interleaved, the order
rotating each round: untraced, `iolens record` (default), `iolens record --no-latency`, and
bcc's syscount (whole system). Throughput (files/s) is the workload's own; ratio = median
traced / median untraced. For iolens also: ops not counted, interval lengths, collector CPU
(share of one core) and RSS, and exactness of the capture against the workload's own counts
(bytes, opens, fstats, reads, closes per directory and for the whole file set).

Part 2 (first epoch). --epoch-files distinct files, each read once (no warm-up pass in the
workload: every open is of a file new to the tracer), by the same Python loader and by
`storm files` (C, 2 processes: the highest new-file rate this machine makes), untraced vs
iolens default, interleaved. Reports the new-file rate, whether every path arrived (no new
file lost, no op without a name), interval lengths and exactness.

File sets live in $IOLENS_BENCH_DATA (default /var/tmp/iolens-bench-smallfiles) and are
made once. Raw results: benchmarks/results/smallfiles.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

HERE = Path(__file__).resolve().parent
WL = str(HERE / "wl_smallfiles.py")
SYSCOUNT = "/usr/sbin/syscount-bpfcc"
VARIANTS = ("untraced", "iolens", "iolens_nolat", "syscount")
BEFORE = ""  # --before: the iolens executable of an earlier build (variant iolens_before)


def wl_cmd(data: Path, files: int, secs: float, extra: list[str], truth: Path) -> list[str]:
    return [sys.executable, WL, "--data", str(data), "--files", str(files), "--dirs", "200",
            "--workers", "2", "--seconds", str(secs), "--truth", str(truth), *extra]


def run_variant(variant: str, cmd: list[str], work: Path, tag: str) -> dict:
    """One run of `cmd` (the workload) under `variant`; its truth and, for iolens, the
    capture's figures."""
    truth = Path(cmd[cmd.index("--truth") + 1])
    cap = work / f"cap-{tag}"
    out: dict = {"variant": variant}
    if variant.startswith("iolens"):
        opts = ["--no-latency"] if variant == "iolens_nolat" else []
        exe = BEFORE if variant == "iolens_before" else C.IOLENS
        r = subprocess.run([exe, "record", "-q", "-o", str(cap), *opts, "--", *cmd],
                           capture_output=True, text=True, timeout=1800)
    elif variant == "syscount":
        sc = subprocess.Popen([SYSCOUNT, "-i", "3600"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
        line = ""
        t0 = time.monotonic()
        while "Tracing" not in line and time.monotonic() - t0 < 120:
            line = sc.stdout.readline()
            if not line and sc.poll() is not None:
                raise RuntimeError("syscount did not start")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        os.killpg(sc.pid, signal.SIGINT)
        try:
            sc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(sc.pid, signal.SIGKILL)
    else:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"{variant} failed: {r.stderr[-400:]}")
    t = json.loads(truth.read_text()) if truth.exists() else json.loads(r.stdout.splitlines()[-1])
    out["files_per_s"] = t["files_per_s"]
    out["files"] = t["files"]
    if variant.startswith("iolens"):
        out.update(capture_figures(cap, t))
        C.rmtree(cap)
    return out


def capture_figures(cap: Path, truth: dict) -> dict:
    """Coverage, timing, collector cost and exactness of one capture against its truth."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    def table(name: str):
        files = sorted(cap.rglob(f"{name}/*.parquet"))
        return pq.read_table(files) if files else None

    h = table("health")
    io = table("io")
    meta = json.loads((cap / "capture.json").read_text())
    iv = h.column("interval_s").to_pylist()
    full = iv[:-1] if len(iv) > 1 else iv  # the last interval ends with the command
    cpu = [c / max(s, 1e-9) for c, s in zip(h.column("collector_cpu_s").to_pylist(), iv)][:-1]
    fig = {
        "intervals": len(iv), "interval_s_min": min(full), "interval_s_max": max(full),
        "intervals_off_20pct": sum(1 for x in full if abs(x - 1.0) > 0.2),
        "uncounted_ops": int(pc.sum(h.column("agg_overflow")).as_py() or 0),
        "lost_events": int(pc.sum(h.column("lost_events")).as_py() or 0),
        "newfile_lost": _sum(h, "newfile_lost"), "unresolved_ops": _sum(h, "unresolved_ops"),
        "new_files": _sum(h, "new_files"), "folded_dir": _sum(h, "folded_dir"),
        "folded_proc": _sum(h, "folded_proc"), "event_backlog": _sum(h, "event_backlog"),
        "collector_cpu_share_median": statistics.median(cpu) if cpu else None,
        "collector_cpu_share_max": max(cpu) if cpu else None,
        "collector_rss_max_mb": max(h.column("collector_rss_bytes").to_pylist()) / 2**20,
        "io_rows": io.num_rows if io is not None else 0,
        "coverage": meta.get("coverage"),
    }
    fig.update(exactness(io, truth))
    return fig


def _sum(h, col: str) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(h.column(col)).as_py() or 0) if col in h.column_names else 0


def exactness(io, truth: dict) -> dict:
    """The file set's totals and per-directory totals, capture vs the workload's counts.
    Rows of grain file are counted in their file's directory, rows of grain dir in theirs."""
    root = truth["data"] + "/"
    procs = [truth["main"], *truth["workers"]] if truth.get("main") else truth["workers"]
    want_ops = {op: sum(p[k] for p in procs) for op, k in
                (("open", "opens"), ("stat", "fstats"), ("read", "reads"), ("close", "closes"))}
    want_bytes = sum(p["bytes"] for p in procs)
    got_ops = dict.fromkeys(want_ops, 0)
    got_bytes = 0
    per_dir: dict[tuple[int, str], int] = {}
    if io is not None:
        if "grain" not in io.column_names:  # a capture from before grains: all per file
            import pyarrow as pa
            io = io.append_column("grain", pa.nulls(io.num_rows, pa.string()))
        cols = io.select(["pid", "op", "resource", "count", "bytes", "grain"]).to_pydict()
        for pid, op, res, n, b, g in zip(*cols.values()):
            if not res or not res.startswith(root):
                continue
            if op in got_ops:
                got_ops[op] += n
            if op == "read":
                got_bytes += b
                d = res.rstrip("/") if g == "dir" else res.rpartition("/")[0]
                per_dir[(pid, d)] = per_dir.get((pid, d), 0) + b
    bad_dirs = sum(1 for p in procs for d, (_, b) in p["per_dir"].items()
                   if per_dir.get((p["pid"], d), 0) != b)
    return {"exact_ops": got_ops == want_ops, "exact_bytes": got_bytes == want_bytes,
            "ops_capture": got_ops, "ops_truth": want_ops, "bytes_capture": got_bytes,
            "bytes_truth": want_bytes, "dirs_wrong": bad_dirs,
            "dirs": sum(len(p["per_dir"]) for p in procs)}


def rounds(variants: list[str], n: int, make_cmd, work: Path, label: str) -> dict[str, list]:
    """n interleaved rounds of every variant (order rotating); results per variant."""
    out: dict[str, list] = {v: [] for v in variants}
    for r in range(n):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for v in order:
            tag = f"{label}-{v}-{r}"
            try:
                res = run_variant(v, make_cmd(work / f"truth-{tag}.json"), work, tag)
            except (RuntimeError, subprocess.SubprocessError) as exc:
                print(f"{label} {v}: {exc}", file=sys.stderr)
                continue
            out[v].append(res)
            print(f"{label} round {r + 1} {v}: {res['files_per_s']:.0f} files/s", file=sys.stderr)
    return out


def storm_rounds(n: int, files: int, data: Path, work: Path) -> dict[str, list]:
    """First epoch by the C loader: untraced vs iolens default, interleaved."""
    storm = C.build_storm(work)
    out: dict[str, list] = {"untraced": [], "iolens": []}
    for r in range(n):
        for v in (("untraced", "iolens") if r % 2 == 0 else ("iolens", "untraced")):
            cmd = [storm, "files", "-n", str(files), "-t", "2", str(data)]
            cap = work / f"cap-storm-{v}-{r}"
            if v == "iolens":
                cmd = [C.IOLENS, "record", "-q", "-o", str(cap), "--", *cmd]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
            if p.returncode != 0:
                print(f"storm {v}: {p.stderr[-300:]}", file=sys.stderr)
                continue
            res = json.loads(p.stdout.strip().splitlines()[-1])
            res["variant"] = v
            if v == "iolens":
                truth = {"data": str(data), "workers": [], "main": None}
                res.update({k: x for k, x in capture_figures(cap, truth).items()
                            if not k.startswith(("exact", "ops_", "bytes_", "dirs"))})
                res["read_bytes_capture"] = _read_bytes(cap, str(data) + "/")
                C.rmtree(cap)
            out[v].append(res)
            print(f"storm round {r + 1} {v}: {res['files_per_s']:.0f} files/s", file=sys.stderr)
    return out


def _read_bytes(cap: Path, root: str) -> int:
    import pyarrow.parquet as pq

    files = sorted(cap.rglob("io/*.parquet"))
    t = pq.read_table(files, columns=["op", "resource", "bytes"]).to_pydict()
    return sum(b for op, r, b in zip(t["op"], t["resource"], t["bytes"])
               if op == "read" and r and r.startswith(root))


def med(xs: list[dict], key: str) -> float | None:
    vals = [x[key] for x in xs if x.get(key) is not None]
    return statistics.median(vals) if vals else None


def summarise(res: dict[str, list], base: str = "untraced") -> tuple[list[list[str]], dict]:
    """Table rows and a summary dict: ratios of medians to the untraced median."""
    b = med(res.get(base, []), "files_per_s")
    rows, summary = [], {}
    for v, xs in res.items():
        if not xs:
            continue
        fps = med(xs, "files_per_s")
        ratio = fps / b if b and fps else None
        s = {"files_per_s_median": fps, "ratio": ratio, "runs": len(xs)}
        row = [v, str(len(xs)), f"{fps:,.0f}", f"{ratio:.3f}" if ratio else "-"]
        if v.startswith("iolens"):
            for k in ("uncounted_ops", "lost_events", "newfile_lost", "unresolved_ops",
                      "intervals_off_20pct", "event_backlog"):
                s[k] = sum(x.get(k, 0) or 0 for x in xs)
            s["interval_s_range"] = [min(x["interval_s_min"] for x in xs),
                                     max(x["interval_s_max"] for x in xs)]
            s["collector_cpu_share_median"] = med(xs, "collector_cpu_share_median")
            s["collector_cpu_share_max"] = max(x["collector_cpu_share_max"] or 0 for x in xs)
            s["collector_rss_max_mb"] = max(x["collector_rss_max_mb"] for x in xs)
            s["exact"] = all(x.get("exact_ops", True) and x.get("exact_bytes", True)
                             and not x.get("dirs_wrong") for x in xs)
            s["folded_share"] = statistics.median(
                [(x["folded_dir"] + x["folded_proc"]) /
                 max(1, (x.get("coverage") or {}).get("ops", 1)) for x in xs])
            row += [str(s["uncounted_ops"]),
                    f"{s['interval_s_range'][0]:.2f}-{s['interval_s_range'][1]:.2f}",
                    str(s["intervals_off_20pct"]),
                    f"{100 * s['collector_cpu_share_median']:.0f} % / "
                    f"{100 * s['collector_cpu_share_max']:.0f} %",
                    f"{s['collector_rss_max_mb']:.0f}",
                    "yes" if s["exact"] else "NO", f"{100 * s['folded_share']:.0f} %"]
        else:
            row += ["-"] * 7
        rows.append(row)
        summary[v] = s
    return rows, summary


HEAD = ["variant", "runs", "files/s (median)", "ratio to untraced", "ops not counted",
        "interval s (min-max)", "intervals off >20%", "collector CPU (median / max)",
        "RSS max MB", "exact", "ops in dir/proc rows"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--work-us", type=float, default=3.0)
    ap.add_argument("--epoch-files", type=int, default=500000)
    ap.add_argument("--epoch-rounds", type=int, default=2)
    ap.add_argument("--skip-epoch", action="store_true")
    ap.add_argument("--before", help="iolens executable of an earlier build: adds the variant "
                                     "iolens_before to the steady-state rounds")
    a = ap.parse_args(argv)
    global BEFORE
    BEFORE = a.before or ""
    C.need_root()
    base = Path(os.environ.get("IOLENS_BENCH_DATA", "/var/tmp/iolens-bench-smallfiles"))
    base.mkdir(parents=True, exist_ok=True)
    work = C.tmpdir("iolens-sf-")
    t0 = time.monotonic()
    variants = list(VARIANTS) if Path(SYSCOUNT).exists() else [v for v in VARIANTS
                                                               if v != "syscount"]
    if BEFORE:
        variants.insert(1, "iolens_before")
    data = base / f"set-{a.files}"
    subprocess.run([sys.executable, WL, "--data", str(data), "--files", str(a.files),
                    "--dirs", "200", "--prepare"], check=True)
    result: dict = {"rounds": a.rounds, "seconds": a.seconds, "files": a.files,
                    "work_us": a.work_us}
    try:
        steady = rounds(variants, a.rounds, lambda tr: wl_cmd(
            data, a.files, a.seconds, ["--work-us", str(a.work_us)], tr), work, "steady")
        rows, summary = summarise(steady)
        text = C.table(HEAD, rows)
        print(f"\nsteady state: {a.files} files, 2 workers, {a.seconds:g} s per run, "
              f"{a.rounds} interleaved rounds")
        print(text)
        result.update(steady=steady, steady_summary=summary, steady_table=text)
        if not a.skip_epoch:
            edata = base / f"set-{a.epoch_files}"
            print(f"making {a.epoch_files} files (once)...", file=sys.stderr)
            subprocess.run([sys.executable, WL, "--data", str(edata), "--files",
                            str(a.epoch_files), "--dirs", "200", "--prepare"], check=True)
            epoch = rounds(["untraced", "iolens"], a.epoch_rounds, lambda tr: wl_cmd(
                edata, a.epoch_files, 600, ["--no-warm", "--epochs", "1", "--work-us", "0"],
                tr), work, "epoch")
            erows, esum = summarise(epoch)
            etext = C.table(HEAD, erows)
            storm = storm_rounds(a.epoch_rounds, a.epoch_files, edata, work)
            srows, ssum = summarise(storm)
            stext = C.table(HEAD, srows)
            print(f"\nfirst epoch, Python loader: {a.epoch_files} distinct files read once")
            print(etext)
            print(f"\nfirst epoch, C loader (storm files, 2 processes): {a.epoch_files} files")
            print(stext)
            result.update(epoch=epoch, epoch_summary=esum, epoch_table=etext, storm=storm,
                          storm_summary=ssum, storm_table=stext, epoch_files=a.epoch_files)
    finally:
        C.rmtree(work)
    result["wall_s"] = time.monotonic() - t0
    p = C.save("smallfiles", result)
    print(f"raw numbers: {C.rel(p)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
