#!/usr/bin/env python3
"""Regenerate every number, table and figure of docs/evaluation.md (`make evaluate`).

    sudo .venv/bin/python benchmarks/evaluate.py                 # everything (~25 min here)
    sudo .venv/bin/python benchmarks/evaluate.py --only overhead,scenarios
    .venv/bin/python benchmarks/evaluate.py --render-only        # tables/figures from results
    sudo .venv/bin/python benchmarks/evaluate.py --quick         # smoke run: small sizes

Each step is one benchmark script run with the fixed arguments listed in STEPS (the same
command is printed in the document beside its table). Raw results go to docs/eval/results/
(<name>.json, the script's output in <name>.log), then benchmarks/eval_report.py rewrites the
generated parts of docs/evaluation.md (between `<!-- eval:NAME -->` markers) and the figures
in docs/eval/figures/ (SVG and PNG). A step that fails keeps its previous results file (the
document then says which run it comes from) and the run exits non-zero at the end.
--quick runs every step with small sizes into a scratch directory and renders there, so the
committed results are not replaced by smoke-test figures.
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
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import _common as C  # noqa: E402

RESULTS = ROOT / "docs" / "eval" / "results"
ANALYZE_KEEP = "/var/tmp/iolens-eval-analyze"


def steps(quick: bool, res: Path) -> list[tuple[str, list[str], int]]:
    """(name, argv after the interpreter, timeout s). The order puts the quiet-machine
    measurements (overhead, bpf_profile) first."""
    q = quick
    return [
        ("exactness", ["benchmarks/exactness.py", "--repeats", "1" if q else "3"], 600),
        ("overhead", ["benchmarks/overhead.py", "--rounds", "1" if q else "5"]
         + (["--scale", "0.2"] if q else []), 1500),
        ("bpf_profile", ["benchmarks/bpf_profile.py", "--rounds", "1" if q else "2",
                         "--variants", "default,nolat"], 900),
        ("probe_cost", ["benchmarks/probe_cost.py", "--rounds", "1" if q else "3",
                        "--json", str(res / "probe_cost.json")], 1200),
        ("startup", ["benchmarks/startup.py", "--repeats", "2" if q else "5"], 600),
        ("capacity", ["benchmarks/capacity.py", "--secs", "1.5" if q else "3"]
         + (["--parts", "rate,keys"] if q else []), 1200),
        ("smallfiles", ["benchmarks/smallfiles.py", "--rounds", "1" if q else "3",
                        "--seconds", "3" if q else "10"]
         + (["--skip-epoch"] if q else ["--epoch-files", "500000"]), 2400),
        ("workloads", ["benchmarks/workloads.py", "--rounds", "1" if q else "2",
                       "--seconds", "0.5" if q else "1.5"], 1800),
        ("scenarios", ["benchmarks/scenarios/run_suite.py", "--seconds", "5" if q else "15",
                       "--json", str(res / "scenarios.json")]
         + (["tiny_files", "healthy_shards"] if q else []), 1800),
        ("replica", ["benchmarks/replica.py", "--rounds", "1" if q else "2", "--seconds",
                     "5" if q else "8", "--rerun"], 2400),
        ("writer_speed", ["benchmarks/writer_speed.py", "--repeats", "1" if q else "3"], 600),
        ("analyze_speed", ["benchmarks/analyze_speed.py", "--rows",
                           "1000000" if q else "20000000", "--keep",
                           f"{ANALYZE_KEEP}-{'1M' if q else '20M'}"], 1800),
        ("engines", ["benchmarks/engines.py", "--rows", *(["200000"] if q else
                     ["1000000", "4000000"]), "--repeats", "1" if q else "3"], 1800),
        ("tui_update", ["benchmarks/tui_update.py", "--rows", "20000", "--repeats",
                        "4" if q else "10"], 600),
    ]


def run_step(name: str, argv: list[str], timeout: int, res: Path) -> dict:
    """Run one benchmark; its output goes to res/<name>.log. Returns status and wall s."""
    cmd = [sys.executable, *argv]
    print(f"\n== {name}: {' '.join(argv)}", flush=True)
    s0 = time.monotonic()
    started, load0 = time.strftime("%Y-%m-%d %H:%M:%S %Z"), os.getloadavg()
    env = dict(os.environ, PYTHONUNBUFFERED="1", IOLENS_BENCH_RESULTS=str(res))
    with open(res / f"{name}.log", "w") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        try:
            rc = p.wait(timeout=timeout)
            status = "ok" if rc == 0 else f"exit {rc}"
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGINT)  # the scripts clean up their temp files in `finally`
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            status = f"timed out after {timeout} s"
    wall = round(time.monotonic() - s0, 1)
    print(f"   {status} in {wall} s (log: {C.rel(res / f'{name}.log')})", flush=True)
    return {"status": status, "wall_s": wall, "command": "sudo .venv/bin/python " + " ".join(
        a if not a.startswith(str(ROOT)) else C.rel(Path(a)) for a in argv),
        "loadavg_start": load0, "loadavg_end": os.getloadavg(), "date": started}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated step names")
    ap.add_argument("--skip", help="comma-separated step names to leave out")
    ap.add_argument("--quick", action="store_true", help="small sizes, scratch results dir")
    ap.add_argument("--results", help="results directory (default docs/eval/results; "
                                      "--quick: a scratch directory)")
    ap.add_argument("--render-only", action="store_true",
                    help="do not measure: render the document and figures from the results")
    a = ap.parse_args(argv)
    res = Path(a.results) if a.results else (
        Path(f"/tmp/iolens-eval-quick-{os.getpid()}") if a.quick else RESULTS)
    res.mkdir(parents=True, exist_ok=True)
    all_steps = steps(a.quick, res)
    names = [n for n, _, _ in all_steps]
    for opt in (a.only, a.skip):
        bad = set(opt.split(",")) - set(names) if opt else set()
        if bad:
            ap.error(f"unknown step {', '.join(sorted(bad))} (steps: {', '.join(names)})")
    failed = []
    if not a.render_only:
        C.need_root()
        index_path = res / "evaluate.json"
        index = json.loads(index_path.read_text()) if index_path.exists() else {"steps": {}}
        index["machine"] = C.machine()
        t0 = time.monotonic()
        for name, args, timeout in all_steps:
            if (a.only and name not in a.only.split(",")) or (a.skip and name in a.skip.split(",")):
                continue
            index["steps"][name] = run_step(name, args, timeout, res)
            if index["steps"][name]["status"] != "ok":
                failed.append(name)
            index_path.write_text(json.dumps(index, indent=1) + "\n")  # after every step
        print(f"\nmeasured in {time.monotonic() - t0:.0f} s; failed: {', '.join(failed) or 'none'}")
    doc = None if a.quick or a.results else ROOT / "docs" / "evaluation.md"
    figs = (res / "figures") if doc is None else ROOT / "docs" / "eval" / "figures"
    rc = subprocess.call([sys.executable, str(HERE / "eval_report.py"), "--results", str(res),
                          "--figures", str(figs)] + (["--doc", str(doc)] if doc else
                                                     ["--out", str(res / "evaluation.md")]))
    if doc is None:
        print(f"rendered into {res / 'evaluation.md'} and {figs}")
    return 1 if failed or rc else 0


if __name__ == "__main__":
    sys.exit(main())
