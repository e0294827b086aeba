#!/usr/bin/env python3
"""Run every iolens benchmark, one after the other, within a time budget (`make bench`).

    sudo .venv/bin/python benchmarks/run_all.py [--budget 840] [--only overhead,capacity]
                                                [--analyze-rows 100000000]

Each benchmark prints its tables; its raw numbers go to benchmarks/results/<name>.json (the
scripts that write no JSON of their own, analyze_speed.py and tui_update.py, get their output
saved as benchmarks/results/<name>.log). A step gets at most the time left in the budget; a
step that would start with less than its minimum left is skipped and listed as such, so the
whole run stays under the budget (default 14 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common as C  # noqa: E402


def steps(a: argparse.Namespace) -> list[tuple[str, list[str], int]]:
    """(name, argv, minimum seconds it needs)."""
    py = sys.executable
    return [
        ("overhead", [py, str(HERE / "overhead.py"), "--rounds", str(a.rounds)], 90),
        ("capacity", [py, str(HERE / "capacity.py"), "--secs", "3"], 120),
        ("workloads", [py, str(HERE / "workloads.py"), "--rounds", "2", "--seconds", "1.5"], 120),
        ("tui_update", [py, str(HERE / "tui_update.py"), "--rows", "20000", "--repeats", "10"], 30),
        # the generated capture is kept and reused by later runs (generating 100M rows is
        # most of this step's time on a first run)
        ("analyze_speed", [py, str(HERE / "analyze_speed.py"), "--rows", str(a.analyze_rows),
                           "--keep", f"{a.analyze_dir}-{a.analyze_rows}"], 60),
        ("bpf_profile", [py, str(HERE / "bpf_profile.py"), "--rounds", "1",
                         "--variants", "default,nolat,nolat_enter_exit"], 60),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=840.0, help="seconds for everything")
    ap.add_argument("--only", help="comma-separated step names")
    ap.add_argument("--rounds", type=int, default=2, help="overhead.py rounds")
    ap.add_argument("--analyze-rows", type=int, default=100_000_000)
    ap.add_argument("--results", help="write results here instead of benchmarks/results")
    ap.add_argument("--analyze-dir", default="/var/tmp/iolens-bench-analyze",
                    help="where the generated capture is kept (suffix: -ROWS)")
    a = ap.parse_args(argv)
    C.need_root()
    if a.results:
        os.environ["IOLENS_BENCH_RESULTS"] = a.results
        C.RESULTS = Path(a.results)
    C.RESULTS.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    ran: dict[str, dict] = {}
    wanted = set(a.only.split(",")) if a.only else None
    for name, cmd, minimum in steps(a):
        if wanted is not None and name not in wanted:
            continue
        if not Path(cmd[1]).exists():
            ran[name] = {"status": "absent"}
            continue
        left = a.budget - (time.monotonic() - t0)
        if left < minimum:
            ran[name] = {"status": f"skipped: {left:.0f} s left of the budget, needs {minimum}"}
            print(f"== {name}: skipped (budget)", flush=True)
            continue
        print(f"\n== {name}: {' '.join(Path(c).name if i < 2 else c for i, c in enumerate(cmd))}",
              flush=True)
        s0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=C.ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        try:
            out, err = p.communicate(timeout=left)
            status = f"exit {p.returncode}"
        except subprocess.TimeoutExpired:
            # SIGINT first: the scripts clean up their temporary files in `finally`
            p.send_signal(signal.SIGINT)
            try:
                out, err = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            status = "timed out (budget)"
        print(out, flush=True)
        if status != "exit 0":
            print(f"{name}: {status}\n{err[-1500:]}", flush=True)
        (C.RESULTS / f"{name}.log").write_text(out + "\n--- stderr ---\n" + err)
        ran[name] = {"status": status, "wall_s": round(time.monotonic() - s0, 1)}
    total = time.monotonic() - t0
    print("\n== summary")
    print(C.table(["benchmark", "status", "wall s"],
                  [[n, d["status"], str(d.get("wall_s", "-"))] for n, d in ran.items()]))
    print(f"total {total:.0f} s (budget {a.budget:.0f} s)")
    C.save("run_all", {"steps": ran, "total_s": total, "budget_s": a.budget})
    return 0 if all(d["status"] in ("exit 0", "absent") for d in ran.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
