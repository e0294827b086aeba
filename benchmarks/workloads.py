#!/usr/bin/env python3
"""Realistic AI workloads, untraced vs traced by `iolens record`: wall-time slowdown.

    sudo .venv/bin/python benchmarks/workloads.py [--rounds 3] [--seconds 2.5] [--only a,b]

Each workload is a labeled scenario of benchmarks/scenarios/ run for a fixed amount of work by
wl_driver.py (the iteration count is calibrated once, untraced, to about --seconds). Then, per
round, all workloads run one after the other untraced, and again under one
`iolens record -q -o DIR -- wl_driver.py --batch ...` (default options; which goes first
alternates each round). The time is measured inside the workload (interpreter start and the
tracer's start-up are not part of it). Slowdown = median(traced) / median(untraced) - 1; the
min-based figure is shown too. Two traced variants: iolens default (every probe that loads)
and the syscall probe only (--disable block, pagecache, tcp, gpu). Raw numbers: benchmarks/results/workloads.json.

Scenario data lives in $IOLENS_SCENARIO_DATA (default /var/tmp/iolens-bench-scenarios).
Needs torch (`pip install -e '.[scenarios]'`); a workload whose scenario is missing or fails
is reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

DRIVER = str(Path(__file__).resolve().parent / "wl_driver.py")
WORKLOADS = {
    "tiny_files": "DataLoader, 2 workers, 2 KiB files read cold (page cache evicted)",
    "healthy_shards": "DataLoader, 1 worker, 1 MiB samples from 32 MiB shards, compute-bound",
    "checkpoint_fsync": "train step + torch.save of 48 MiB + fsync every step",
    "inference_server": "TCP server, 4 clients, 64 x 256 B reads + tiny model per request",
    "mmap_load": "cold mmap of a 512 MiB weights file, one touch per page",
    "gloo_ranks": "2 gloo ranks over loopback, all_reduce of 2 MiB",
}


def last_json(out: str) -> dict:
    for ln in reversed(out.splitlines()):
        if ln.startswith("{"):
            return json.loads(ln)
    raise RuntimeError(f"no result line: {out[-300:]!r}")


#: how each variant runs the batch: None = untraced, else extra `iolens record` options
VARIANTS = {"untraced": None, "traced": [],
            "traced_sys": [x for p in ("block", "pagecache", "tcp", "gpu") for x in ("--disable", p)]}


def run(iters: dict[str, int], variant: str, work: Path, env: dict) -> dict[str, float | None]:
    """Every workload once, in one process tree (one `iolens record` when traced)."""
    cmd = [sys.executable, DRIVER, "--batch", *(f"{n}:{k}" for n, k in iters.items())]
    cap = work / f"cap-{time.monotonic_ns()}"
    traced = VARIANTS[variant] is not None
    if traced:
        cmd = [C.IOLENS, "record", "-q", "-o", str(cap), *VARIANTS[variant], "--", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    C.rmtree(cap)
    if r.returncode != 0:
        raise RuntimeError(f"{'traced' if traced else 'untraced'} batch failed: {r.stderr[-500:]}")
    return last_json(r.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.5, help="target work per run")
    ap.add_argument("--only", help="comma-separated workload names")
    a = ap.parse_args(argv)
    C.need_root()
    env = dict(os.environ)
    env.setdefault("IOLENS_SCENARIO_DATA", "/var/tmp/iolens-bench-scenarios")
    names = a.only.split(",") if a.only else list(WORKLOADS)
    work = C.tmpdir("iolens-wl-")
    t0 = time.monotonic()
    iters, skipped = {}, {}
    for n in names:
        try:
            subprocess.run([sys.executable, DRIVER, n, "--prepare"], check=True, env=env,
                           capture_output=True, text=True, timeout=600)
            r = subprocess.run([sys.executable, DRIVER, n, "--calibrate", str(a.seconds)],
                               check=True, env=env, capture_output=True, text=True, timeout=600)
            iters[n] = max(1, last_json(r.stdout)["iters"])
        except (subprocess.SubprocessError, RuntimeError, ValueError) as exc:
            err = getattr(exc, "stderr", "") or str(exc)
            skipped[n] = err.strip().splitlines()[-1] if err.strip() else type(exc).__name__
            print(f"skip {n}: {skipped[n]}", file=sys.stderr)
    samples = {n: {v: [] for v in VARIANTS} for n in iters}
    variants = list(VARIANTS)
    errors: dict[str, list[str]] = {}
    try:
        for r in range(a.rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for variant in order:
                try:
                    res = run(iters, variant, work, env)
                except (RuntimeError, subprocess.SubprocessError) as exc:
                    errors.setdefault("batch", []).append(str(exc)[-300:])
                    print(exc, file=sys.stderr)
                    continue
                for n, secs in res.items():
                    if secs is None:
                        errors.setdefault(n, []).append("failed")
                    else:
                        samples[n][variant].append(secs)
            print(f"round {r + 1}/{a.rounds} done ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    finally:
        C.rmtree(work)
    rows, summary = [], {}
    for n, s in samples.items():
        if not s["untraced"]:
            continue
        umn, umd = C.mn_md(s["untraced"])
        summary[n] = {"iters": iters[n], "untraced_s": [umn, umd]}
        row = [n, WORKLOADS.get(n, ""), str(iters[n]), f"{umn:.3f} / {umd:.3f}"]
        for v in ("traced", "traced_sys"):
            if not s[v]:
                row += ["-", "-"]
                continue
            tmn, tmd = C.mn_md(s[v])
            slow_md, slow_mn = (tmd / umd - 1) * 100, (tmn / umn - 1) * 100
            summary[n][v] = {"s": [tmn, tmd], "slowdown_pct_median": slow_md,
                             "slowdown_pct_min": slow_mn}
            row += [f"{tmn:.3f} / {tmd:.3f}", f"{slow_md:+.1f} % / {slow_mn:+.1f} %"]
        rows.append(row)
    text = C.table(["workload", "what", "iters", "untraced s (min / med)",
                    "iolens default s", "slowdown (median / min)",
                    "syscall probe only s", "slowdown (median / min)"], rows)
    print(f"wall time of a fixed amount of work, {a.rounds} interleaved rounds")
    print(text)
    p = C.save("workloads", {"rounds": a.rounds, "seconds": a.seconds, "iters": iters,
                             "what": WORKLOADS,
                             "skipped": skipped, "errors": errors, "samples": samples,
                             "summary": summary, "table": text, "wall_s": time.monotonic() - t0})
    print(f"raw numbers: {C.rel(p)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
