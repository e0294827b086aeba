#!/usr/bin/env python3
"""Fidelity of `iolens replay-config`: record a workload, generate its fio replica, record
fio running it, and compare the two captures per file class.

    sudo .venv/bin/python benchmarks/replica.py --rounds 2 --seconds 8 --rerun
    sudo .venv/bin/python benchmarks/replica.py --workloads checkpoint_fsync --rounds 1
    sudo .venv/bin/python benchmarks/replica.py --workloads tiny_files --no-cpu-load

Workloads: four labeled scenarios of benchmarks/scenarios (tiny_files: small-file loader,
healthy_shards: sequential shard reader, checkpoint_fsync: checkpoint writer with fsync,
random_reads: random-record reader). Rounds are interleaved (round 1 of every workload, then
round 2...), so a slow minute of the shared machine does not fall on one workload only.
For each round: the scenario's data is prepared (not recorded), the scenario recorded with
`iolens record`, `iolens replay-config --fio` run on the capture, the replica's files laid
out with `fio --create_only=1` and the folders the job file marks `cached at start` read once
(neither recorded), fio recorded with `iolens record`, and both
captures reduced by `replica_compare.class_metrics`. Prints, per workload and metric, the
original, the replica and the ratio (or difference in points) side by side, the top
finding category of `iolens analyze` on both, and whether the original's top category is
among the replica's findings at all. With `--rerun` (as `make evaluate` runs it) each
workload is recorded a second time after its replica and that rerun scored against the
first recording like the replica is: how close the job comes to itself, run after run, on
this machine (the floor under any tolerance). Results: $IOLENS_BENCH_RESULTS/replica.json
(replica_no_cpu_load.json with `--no-cpu-load`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import _common as C  # noqa: E402

from iolens.analysis.replica_compare import (  # noqa: E402
    METRICS, class_metrics, fidelity, findings, rows_json, top_category)
from iolens.collector.capture import read_capture  # noqa: E402

SCEN = HERE / "scenarios"
#: workload -> (kind in words, the file class its data is in)
WORKLOADS = {
    "tiny_files": ("small-file loader (2 DataLoader workers, one 2 KiB file per sample)",
                   "dataset"),
    "healthy_shards": ("sequential shard reader (1 MiB samples of 32 MiB shards, compute-bound)",
                       "dataset"),
    "checkpoint_fsync": ("checkpoint writer (torch.save of ~48 MiB + fsync every step)",
                         "checkpoint"),
    "random_reads": ("random-record reader (4 KiB preads at random offsets, cold)", "other"),
}


def iolens() -> str:
    exe = Path(sys.executable).with_name("iolens")
    return str(exe) if exe.exists() else (shutil.which("iolens") or "iolens")


def record_scenario(script: str, out: Path, env: dict[str, str]) -> None:
    """`iolens record` of one run of a scenario script into `out`."""
    subprocess.run([iolens(), "record", "-q", "-o", str(out), "--", sys.executable, script],
                   check=True, env=env, cwd=SCEN)


def one(name: str, work: Path, seconds: float, rerun: bool = False,
        cpu_load: bool = True) -> dict:
    """One round trip of one workload; returns its figures. With `rerun`, the workload is
    recorded once more after the replica and compared with its first recording alike;
    without `cpu_load` the job file's CPU section is left out (to measure what it does)."""
    env = {**os.environ, "IOLENS_SCENARIO_SECONDS": str(seconds),
           "IOLENS_SCENARIO_TRUTH": str(work / f"{name}.truth.json")}
    script = str(SCEN / f"{name}.py")
    orig, rep = work / f"{name}.orig", work / f"{name}.replica"
    target = work / f"{name}.target"
    job = work / f"{name}.fio"
    for p in (orig, rep, target):
        C.rmtree(p)
    target.mkdir(parents=True)
    subprocess.run([sys.executable, script, "--prepare"], check=True, env=env, cwd=SCEN)
    t0 = time.monotonic()
    record_scenario(script, orig, env)
    t1 = time.monotonic()
    subprocess.run([iolens(), "replay-config", str(orig), "--target", str(target), "--fio",
                    str(job), "--force"], check=True, stdout=subprocess.DEVNULL)
    if not cpu_load:
        text = job.read_text()
        if "[cpu-load]" in text:
            job.write_text(text[:text.rindex("; --- CPU:")])
    subprocess.run(["fio", "--create_only=1", str(job)], check=True, stdout=subprocess.DEVNULL)
    os.sync()
    warm(job, target)
    t2 = time.monotonic()
    subprocess.run([iolens(), "record", "-q", "-o", str(rep), "--", "fio", str(job)],
                   check=True, stdout=subprocess.DEVNULL)
    t3 = time.monotonic()
    orig_tables = read_capture(orig).tables
    om = class_metrics(orig_tables)
    rm = class_metrics(read_capture(rep).tables)
    rows = fidelity(om, rm)
    again = []
    if rerun:  # the same job once more: how close a run of the job itself comes
        orig2 = work / f"{name}.orig2"
        C.rmtree(orig2)
        record_scenario(script, orig2, env)
        again = rows_json(fidelity(om, class_metrics(read_capture(orig2).tables)))
    top_o, found_r = top_category(str(orig)), findings(str(rep))
    top_r = found_r[0] if found_r else ("none", None)
    out = {"workload": name, "orig_s": round(t1 - t0, 1), "replica_s": round(t3 - t2, 1),
           **cpu_of(orig_tables),
           "rows": rows_json(rows), "rerun_rows": again,
           "top_original": top_o, "top_replica": top_r,
           "top_match": top_o[0] == top_r[0],
           "top_in_replica": top_o[0] == "none" and not found_r
           or top_o[0] in {c for c, _ in found_r},
           "replica_findings": found_r, "fio_lines": len(job.read_text().splitlines())}
    for p in (target,):
        C.rmtree(p)
    return out


def cpu_of(tables: dict) -> dict:
    """On-CPU and run-queue seconds of the original's traced threads, per comm (the cpu
    table): how much the job's processes competed for the CPU."""
    cpu = tables.get("cpu")
    if cpu is None or cpu.num_rows == 0:
        return {}
    g = cpu.group_by("comm").aggregate([("cpu_ns", "sum"), ("runq_ns", "sum")])
    return {"orig_cpu_s": dict(zip(g.column("comm").to_pylist(),
                                   (round(x / 1e9, 2) for x in g.column("cpu_ns_sum").to_pylist()),
                                   strict=True)),
            "orig_runq_s": dict(zip(g.column("comm").to_pylist(),
                                    (round((x or 0) / 1e9, 2)
                                     for x in g.column("runq_ns_sum").to_pylist()),
                                    strict=True))}


def warm(job: Path, target: Path) -> None:
    """Read the folders the job file marks `cached at start` (not recorded), as its header
    asks: the original found that data in the page cache."""
    for line in job.read_text().splitlines():
        if line.startswith(";     cached at start: read "):
            folder = Path(line.split(" read ", 1)[1].split("/*", 1)[0])
            if folder.is_relative_to(target):
                for f in sorted(folder.glob("*")):
                    with open(f, "rb") as fh:
                        while fh.read(1 << 20):
                            pass


def _judged(rows: list[dict]) -> tuple[list[float], float | None, int, int]:
    """(scores, their median, rounds within tolerance, rounds judged) of one metric's rows
    over the rounds."""
    scores = [x["score"] for x in rows if x["score"] is not None]
    oks = [x["ok"] for x in rows if x["ok"] is not None]
    return scores, statistics.median(scores) if scores else None, sum(oks), len(oks)


def summarise(runs: list[dict]) -> dict:
    """Per workload and metric of its data class: original, replica and score of each
    round, their medians, and the share of rounds within tolerance."""
    out: dict = {}
    for name, (_, cls) in WORKLOADS.items():
        mine = [r for r in runs if r["workload"] == name]
        if not mine:
            continue
        per: dict = {}
        for metric in METRICS:
            got = [x for r in mine for x in r["rows"]
                   if x["file_class"] == cls and x["metric"] == metric]
            again = [x for r in mine for x in r.get("rerun_rows", [])
                     if x["file_class"] == cls and x["metric"] == metric]
            scores, median, ok_rounds, rounds = _judged(got)
            _, r_median, r_ok, r_rounds = _judged(again)
            per[metric] = {"rerun_score_median": r_median, "rerun_ok_rounds": r_ok,
                           "rerun_rounds": r_rounds,
                           "original": [x["original"] for x in got],
                           "replica": [x["replica"] for x in got], "score": scores,
                           "score_median": median,
                           "kind": METRICS[metric][0], "tolerance": METRICS[metric][1],
                           "ok_rounds": ok_rounds, "rounds": rounds}
        out[name] = {"kind": WORKLOADS[name][0], "file_class": cls, "metrics": per,
                     "orig_runq_s": [r.get("orig_runq_s") for r in mine],
                     "orig_cpu_s": [r.get("orig_cpu_s") for r in mine],
                     "top_original": [r["top_original"][0] for r in mine],
                     "top_replica": [r["top_replica"][0] for r in mine],
                     "top_match_rounds": sum(r["top_match"] for r in mine),
                     "top_in_replica_rounds": sum(r["top_in_replica"] for r in mine),
                     "rounds": len(mine)}
    return out


def print_table(summary: dict) -> None:
    for name, s in summary.items():
        print(f"\n{name} ({s['file_class']} files): top finding {s['top_original']} -> "
              f"replica {s['top_replica']}")
        if s.get("orig_cpu_s") and s["orig_cpu_s"][-1]:
            print(f"  original's threads, last round: on CPU {s['orig_cpu_s'][-1]} s, "
                  f"waiting for a CPU {s['orig_runq_s'][-1]} s")
        print(f"  {'metric':13} {'original':>22} {'replica':>22} {'score':>10}  within"
              f"  {'rerun':>10}  within")
        for metric, m in s["metrics"].items():
            o = m["original"][-1] if m["original"] else None
            r = m["replica"][-1] if m["replica"] else None
            unit = "" if m["kind"] == "ratio" else " pt"
            sc, ra = (("-" if v is None else f"{v:.3f}{unit}")
                      for v in (m["score_median"], m.get("rerun_score_median")))
            again = f"{m.get('rerun_ok_rounds', 0)}/{m.get('rerun_rounds', 0)}"
            print(f"  {metric:13} {str(o):>22} {str(r):>22} {sc:>10}  "
                  f"{m['ok_rounds']}/{m['rounds']:<4}  {ra:>10}  {again}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=8.0, help="run time of each workload")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--rerun", action="store_true",
                    help="also record each workload a second time and score that rerun "
                         "against the first recording: the closeness a run of the job "
                         "itself reaches (the floor under every tolerance)")
    ap.add_argument("--no-cpu-load", action="store_true",
                    help="leave the job files' CPU section (fio cpuio) out, to measure what "
                         "it does")
    ap.add_argument("--work", default="/var/tmp/iolens-replica-bench",
                    help="captures, job files and replica data (replica data removed after "
                         "each round)")
    a = ap.parse_args(argv)
    C.need_root()
    if not shutil.which("fio"):
        sys.exit("replica: fio is not installed (apt-get install fio)")
    names = a.workloads.split(",")
    bad = set(names) - set(WORKLOADS)
    if bad:
        ap.error(f"unknown workload(s): {', '.join(sorted(bad))}")
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    for rnd in range(a.rounds):
        for name in names:
            print(f"round {rnd + 1}: {name}", flush=True)
            runs.append({"round": rnd + 1,
                         **one(name, work, a.seconds, a.rerun, not a.no_cpu_load)})
    summary = summarise(runs)
    print_table(summary)
    C.save("replica_no_cpu_load" if a.no_cpu_load else "replica",
           {"rounds": a.rounds, "seconds": a.seconds, "rerun": a.rerun,
            "cpu_load": not a.no_cpu_load, "runs": runs, "summary": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
