"""The issue-16 scenario, as root: SIGKILL a recorder 26 s into a 1 s-interval capture.

usage: sudo .venv/bin/python benchmarks/crash_kill.py [--at 26] [--interval 1] [--keep DIR]

1. `iolens record -o CAP -p PID -d 60 -i 1` on a steady file workload (tests/workloads/busy_io.py),
   SIGKILL at --at seconds after the recorder started; then `iolens analyze --json CAP`.
2. `iolens record --daemon` (hive tree, default rotate 60 s) killed the same way, restarted for a
   few seconds (its start compacts the killed run's segment into the tree), then analyzed.

For each: intervals `analyze` reads, how many were recovered from the write-ahead segment, the
workload's io rows, and whether any BPF program the recorder held is still loaded
(`bpftool prog list`). Before issue 16 the first case read 0 intervals (nothing rotated yet).
Results: benchmarks/results/crash_kill.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PY = sys.executable
IOLENS = [PY, "-m", "iolens.collector.cli"]


def prog_ids_of(pid: int) -> set[int]:
    """BPF program ids a process holds (its fdinfo)."""
    out = set()
    for fi in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            for line in fi.read_text().splitlines():
                if line.startswith("prog_id:"):
                    out.add(int(line.split(":")[1]))
        except OSError:
            continue
    return out


def loaded_prog_ids() -> set[int]:
    out = subprocess.run(["bpftool", "-j", "prog", "list"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return {p["id"] for p in json.loads(out or "[]")}


def kill_at(proc: subprocess.Popen, started: float, at: float) -> set[int]:
    """SIGKILL `proc` `at` s after `started`; returns the BPF programs it held just before."""
    time.sleep(max(0.0, started + at - 0.5 - time.monotonic()))
    held = prog_ids_of(proc.pid)
    time.sleep(max(0.0, started + at - time.monotonic()))
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    return held


def analyze(path: Path, pid: int) -> dict:
    out = subprocess.run([*IOLENS, "analyze", "--json", str(path)], capture_output=True,
                         text=True, timeout=600)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1:]}
    h = json.loads(out.stdout)["health"]
    from iolens.collector.capture import read_capture

    import pyarrow.compute as pc
    io = read_capture(path, ["io"]).tables["io"]
    mine = io.filter(pc.equal(io["pid"], pid))
    return {"intervals": h["intervals"], "recovered_intervals": h["recovered_intervals"],
            "ended_abruptly": h["ended_abruptly"],
            "note": next((n for n in h["notes"] if "abruptly" in n), None),
            "workload_io_rows": mine.num_rows,
            "leftovers": [str(p) for p in path.rglob("*") if p.suffix in (".arrows", ".commit")]}


def still_loaded(held: set[int]) -> list[int]:
    deadline = time.monotonic() + 10
    while held & loaded_prog_ids() and time.monotonic() < deadline:
        time.sleep(0.2)
    return sorted(held & loaded_prog_ids())


def record_case(tmp: Path, pid: int, at: float, interval: float) -> dict:
    cap = tmp / "cap"
    t0 = time.monotonic()
    rec = subprocess.Popen([*IOLENS, "record", "-q", "-o", str(cap), "-p", str(pid), "-d", "60",
                            "-i", str(interval)], stderr=subprocess.DEVNULL)
    held = kill_at(rec, t0, at)
    return {"killed_at_s": at, "bpf_programs_held": len(held),
            "bpf_programs_left": still_loaded(held), **analyze(cap, pid)}


def daemon_case(tmp: Path, pid: int, at: float, interval: float) -> dict:
    root, status = tmp / "tree", tmp / "status.json"
    cfg = tmp / "iolens.toml"
    cfg.write_text(f'root = "{root}"\nstatus_file = "{status}"\ninterval_s = {interval}\n')
    start = [*IOLENS, "record", "--daemon", "--config", str(cfg)]
    t0 = time.monotonic()
    d1 = subprocess.Popen(start, stderr=subprocess.DEVNULL)
    held = kill_at(d1, t0, at)
    left = still_loaded(held)
    d2 = subprocess.Popen(start, stderr=subprocess.DEVNULL)  # compacts the leftovers first
    time.sleep(8)
    d2.send_signal(signal.SIGTERM)
    d2.wait(60)
    runs = sorted(root.glob("host=*/capture-*.json"))
    killed = json.loads(runs[0].read_text()) if runs else {}
    return {"killed_at_s": at, "bpf_programs_held": len(held), "bpf_programs_left": left,
            "killed_run_intervals": killed.get("intervals"),
            "killed_run_recovered": killed.get("recovered_intervals"),
            **analyze(root, pid)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--at", type=float, default=26.0, help="seconds until SIGKILL (default 26)")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--keep", metavar="DIR", help="leave the captures in DIR")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("crash_kill: needs root (it records with BPF)")
    if not a.at > 0 or not a.interval > 0:
        sys.exit("crash_kill: --at and --interval must be positive")
    tmp = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="iolens-crashkill-"))
    tmp.mkdir(parents=True, exist_ok=True)
    work = subprocess.Popen([PY, str(ROOT / "tests/workloads/busy_io.py"), str(tmp / "work"),
                             str(3 * a.at + 60)])
    try:
        res = {"record": record_case(tmp, work.pid, a.at, a.interval),
               "daemon": daemon_case(tmp, work.pid, a.at, a.interval)}
    finally:
        work.terminate()
        work.wait(30)
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    for case, r in res.items():
        print(f"{case}: killed at {r['killed_at_s']:g} s -> analyze reads {r.get('intervals')} "
              f"intervals ({r.get('recovered_intervals')} recovered), workload io rows "
              f"{r.get('workload_io_rows')}, BPF programs left {r['bpf_programs_left']} "
              f"of {r['bpf_programs_held']}")
        print(f"  {r.get('note') or r.get('error')}")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _common as C

    C.save("crash_kill", {"at_s": a.at, "interval_s": a.interval, **res})


if __name__ == "__main__":
    main()
