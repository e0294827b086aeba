#!/usr/bin/env python3
"""Capacity of the iolens collector, measured on real captures of benchmarks/storm.c.

    sudo .venv/bin/python benchmarks/capacity.py [--parts rate,events,keys] [--secs 4]

1. rate    highest syscall rate traced with zero loss in the aggregated data: `storm rate`
           (unpaced pread of 1 byte, 1 and 2 threads) under `iolens record`; the calls the
           storm made are compared with the sum of `count` in the capture's io table, and the
           capture's agg_overflow. The same storm untraced gives the machine's untraced rate.
2. events  the per-event stream (ring buffer, no wakeups, consumed every 100 ms): `storm ramp`
           opens and closes a file at increasing paced rates (2 events per open+close); per
           step, open events in the capture's events table vs opens made. Reported: the highest
           step with no lost event, and the first step with a loss.
3. keys    collector CPU % of one core, RSS, drain time and keys per 1 s interval with 100,
           1k, 10k and 100k active keys (`storm keys -n N`: N fds of one file, one process per
           10k fds, each fd pread every 0.5 s), from the capture's own health table (steady intervals only: the first
           intervals that start after every fd is open and end before the storm does);
           --max-keys is raised to 2N where N > 32k (default 65536).
           Parquet bytes per io row on disk, from the same captures.
Raw numbers: benchmarks/results/capacity.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

STEPS = [10_000, 25_000, 50_000, 100_000, 200_000, 300_000, 0]  # opens/s; 0 = unpaced
KEYS = [100, 1_000, 10_000, 100_000]


def last_json(out: str) -> dict:
    for ln in reversed(out.splitlines()):
        if ln.startswith("{"):
            return json.loads(ln)
    raise RuntimeError(f"no result line: {out[-300:]!r}")


def record(cap: Path, cmd: list[str], extra: list[str] | None = None) -> dict:
    r = subprocess.run([C.IOLENS, "record", "-q", "-o", str(cap), *(extra or []), "--", *cmd],
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"iolens record failed ({r.returncode}): {r.stderr[-600:]}")
    return last_json(r.stdout)


def table_of(cap: Path, name: str):
    files = sorted((cap / name).glob("*.parquet"))
    return pq.read_table([str(f) for f in files]) if len(files) > 1 else pq.read_table(files[0])


def part_rate(storm: str, work: Path, secs: float) -> dict:
    out: dict = {"runs": []}
    for threads in (1, 2):
        un = last_json(subprocess.run([storm, "rate", "-t", str(threads), "-d", str(secs),
                                       str(work)], capture_output=True, text=True,
                                      check=True).stdout)
        cap = work / f"rate{threads}"
        res = record(cap, [storm, "rate", "-t", str(threads), "-d", str(secs), str(work)])
        io = table_of(cap, "io")
        mask = pc.and_(pc.equal(io["pid"], res["pid"]), pc.equal(io["syscall"], "pread64"))
        mask = pc.and_(mask, pc.ends_with(pc.fill_null(io["resource"], ""), "storm.dat"))
        # the storm's own setup preads (page-cache warm-up) are in the capture too
        counted = int(pc.sum(pc.filter(io["count"], mask)).as_py() or 0) - res["setup_preads"]
        meta = json.loads((cap / "capture.json").read_text())
        run = {"threads": threads, "untraced_rate": un["rate"], "traced_rate": res["rate"],
               "calls": res["calls"], "counted": counted, "lost": res["calls"] - counted,
               "agg_overflow": meta.get("agg_overflow", 0)}
        out["runs"].append(run)
        print(f"rate: {run}", file=sys.stderr)
        C.rmtree(cap)
    ok = [r for r in out["runs"] if r["lost"] == 0 and not r["agg_overflow"]]
    out["max_zero_loss_rate"] = max((r["traced_rate"] for r in ok), default=0)
    return out


def part_events(storm: str, work: Path, secs: float) -> dict:
    cap = work / "ramp"
    res = record(cap, [storm, "ramp", "-d", str(secs), str(work), *map(str, STEPS)])
    meta = json.loads((cap / "capture.json").read_text())
    health = table_of(cap, "health").sort_by("ts").to_pylist()
    # ring-buffer reserve failures are counted in BPF per interval (health.lost_events); each
    # interval's losses go to the step it overlaps most (steps are separated by 1 s pauses)
    lost = [0] * len(res["steps"])
    for h in health:
        lo = h["ts"].timestamp()
        hi = lo + h["interval_s"]
        ov = [max(0.0, min(hi, st["end_realtime"]) - max(lo, st["start_realtime"]))
              for st in res["steps"]]
        if h["lost_events"] and max(ov) > 0:
            lost[ov.index(max(ov))] += h["lost_events"]
    steps = []
    for st, n_lost in zip(res["steps"], lost):
        steps.append({"target_opens_s": st["target"], "opens_s": st["rate"], "events_s": 2 * st["rate"],
                      "opens": st["opens"], "events": 2 * st["opens"], "lost": n_lost})
    first = next((i for i, s in enumerate(steps) if s["lost"] > 0), len(steps))
    lossless = steps[:first]
    first_loss = steps[first] if first < len(steps) else None
    out = {"steps": steps, "health": [{"ts": h["ts"].timestamp(), "interval_s": h["interval_s"],
                                       "lost_events": h["lost_events"],
                                       "event_rows": h["event_rows"]} for h in health],
           "lost_events_total": meta.get("lost_events"),
           "health_lost_events": sum(h["lost_events"] for h in health),
           "max_lossless_events_s": max((s["events_s"] for s in lossless), default=0),
           "first_loss_events_s": first_loss["events_s"] if first_loss else None}
    b, rows = C.io_size(cap)
    out["io_bytes"], out["io_rows"] = b, rows
    C.rmtree(cap)
    return out


def part_keys(storm: str, work: Path, secs: float) -> dict:
    out = []
    for n in KEYS:
        cap = work / f"keys{n}"
        extra = ["--max-keys", str(2 * n)] if 2 * n > 65536 else []
        t0 = time.monotonic()
        # every fd touched for `secs` after the last process has opened its fds
        res = record(cap, [storm, "keys", "-n", str(n), "-d", str(secs + 1.5), str(work)], extra)
        h = table_of(cap, "health").sort_by("ts").to_pylist()
        # steady intervals: wholly after every fd was open and before the storm ended
        steady = [x for x in h if x["ts"].timestamp() >= res["steady_from_realtime"]
                  and x["ts"].timestamp() + x["interval_s"] <= res["end_realtime"] + 0.05]
        steady = steady or h[1:-1] or h
        cpu = [100 * x["collector_cpu_s"] / x["interval_s"] for x in steady]
        drain = [x["drain_ms"] for x in steady]
        b, rows = C.io_size(cap)
        meta = json.loads((cap / "capture.json").read_text())
        r = {"keys_target": n, "intervals": len(steady), "keys": [x["keys"] for x in steady],
             "cpu_pct_median": statistics.median(cpu) if cpu else None,
             "cpu_pct_max": max(cpu) if cpu else None,
             "rss_mb_max": max(x["collector_rss_bytes"] for x in h) / 2**20,
             "drain_ms_median": statistics.median(drain) if drain else None,
             "drain_ms_max": max(drain) if drain else None,
             "io_bytes": b, "io_rows": rows, "bytes_per_row": b / rows if rows else None,
             "agg_overflow": meta.get("agg_overflow"), "passes": res.get("passes"),
             "pass_max_s": res.get("pass_max_s"), "wall_s": time.monotonic() - t0}
        out.append(r)
        print(f"keys: { {k: v for k, v in r.items() if k != 'keys'} }", file=sys.stderr)
        C.rmtree(cap)
    return {"levels": out}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="rate,events,keys")
    ap.add_argument("--secs", type=float, default=4.0, help="seconds per measured step")
    a = ap.parse_args(argv)
    C.need_root()
    work = C.tmpdir("iolens-cap-")
    storm = C.build_storm(work)
    t0 = time.monotonic()
    data: dict = {}
    try:
        for part in a.parts.split(","):
            try:
                data[part] = {"rate": part_rate, "events": part_events, "keys": part_keys}[part](
                    storm, work, a.secs if part != "events" else max(1.0, a.secs / 2))
            except Exception as exc:  # noqa: BLE001 - report and go on with the next part
                data[part] = {"error": str(exc)[-500:]}
                print(f"{part}: {exc}", file=sys.stderr)
    finally:
        C.rmtree(work)
    tables = {}
    if "runs" in data.get("rate", {}):
        rows = [[str(r["threads"]), f"{r['untraced_rate'] / 1e6:.2f} M/s", f"{r['traced_rate'] / 1e6:.2f} M/s",
                 str(r["calls"]), str(r["counted"]), str(r["lost"]), str(r["agg_overflow"])]
                for r in data["rate"]["runs"]]
        tables["rate"] = C.table(["threads", "untraced rate", "traced rate", "calls made",
                                  "counted in io table", "lost", "agg_overflow"], rows)
    if "steps" in data.get("events", {}):
        rows = [[("unpaced" if s["target_opens_s"] == 0 else f"{s['target_opens_s']:.0f}"),
                 f"{s['events_s'] / 1e3:.0f} k/s", str(s["events"]), str(s["lost"])]
                for s in data["events"]["steps"]]
        tables["events"] = C.table(["target opens/s", "events/s achieved (open + close)",
                                    "events", "lost (ring buffer full)"], rows)
    if "levels" in data.get("keys", {}):
        rows = [[f"{r['keys_target']:,}", f"{statistics.median(r['keys']) if r['keys'] else 0:,.0f}",
                 f"{r['cpu_pct_median']:.2f} % (max {r['cpu_pct_max']:.2f})",
                 f"{r['rss_mb_max']:.0f} MB", f"{r['drain_ms_median']:.1f} (max {r['drain_ms_max']:.1f})",
                 f"{r['bytes_per_row']:.1f}" if r["bytes_per_row"] else "-", str(r["agg_overflow"])]
                for r in data["keys"]["levels"]]
        tables["keys"] = C.table(["active keys", "keys drained / interval", "collector CPU (1 core)",
                                  "RSS max", "drain ms (median)", "io Parquet bytes/row",
                                  "agg_overflow"], rows)
    for k, t in tables.items():
        print(f"\n{k}\n{t}")
    p = C.save("capacity", {**data, "tables": tables, "wall_s": time.monotonic() - t0})
    print(f"raw numbers: {C.rel(p)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
