"""The issue-16 scenario, as root: SIGKILL a recorder 26 s into a 1 s-interval capture.

usage: sudo .venv/bin/python benchmarks/crash_kill.py [--at 26] [--interval 1]
                                                      [--since start|attach] [--keep DIR]

1. `iolens record -o CAP -p PID -d 60 -i 1` on a steady file workload (tests/workloads/busy_io.py),
   SIGKILL at --at seconds after the recorder started; then `iolens analyze --json CAP`.
2. `iolens record --daemon` (hive tree, default rotate 60 s) killed the same way, restarted for a
   few seconds (its start compacts the killed run's segment into the tree), then analyzed.

For each: intervals `analyze` reads, how many were recovered from the write-ahead segment, the
workload's io rows, and whether any BPF program the recorder held is still loaded
(`bpftool prog list`). Before issue 16 the first case read 0 intervals (nothing rotated yet).
Results: benchmarks/results/crash_kill.json (crash_kill_attach.json with --since attach).
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


def attached_at(metas: Path, pattern: str, timeout: float = 120) -> float:
    """Monotonic time at which the recorder says its probes are attached (capture metadata)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in metas.glob(pattern):
            try:
                if json.loads(m.read_text()).get("probes_attached"):
                    return time.monotonic()
            except (OSError, ValueError):
                pass
        time.sleep(0.05)
    raise SystemExit("crash_kill: the recorder never attached its probes")


def kill_at(proc: subprocess.Popen, started: float, at: float) -> tuple[set[int], int]:
    """SIGKILL `proc` `at` s after `started`; returns the BPF programs it held just before and
    the wall clock (ns) of the kill."""
    time.sleep(max(0.0, started + at - 0.5 - time.monotonic()))
    held = prog_ids_of(proc.pid)
    time.sleep(max(0.0, started + at - time.monotonic()))
    killed_ns = time.time_ns()
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    return held, killed_ns


def timing(path: Path, started_ns: int, killed_ns: int) -> dict:
    """Where the killed run's intervals lie: start-up before the first one (probes compiling),
    and the time between the end of the last one read and the kill (what was lost)."""
    from iolens.collector.capture import read_capture

    h = read_capture(path, ["health"]).tables["health"]
    ts = [t.value for t in h["ts"] if t.value < killed_ns]
    if not ts:
        return {}
    span = h["interval_s"][0].as_py()
    return {"startup_s": round((min(ts) - started_ns) / 1e9, 2),
            "killed_run_intervals_read": len(ts),
            "lost_s": round((killed_ns - max(ts) - span * 1e9) / 1e9, 2)}


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


def record_case(tmp: Path, pid: int, at: float, interval: float, since: str) -> dict:
    cap = tmp / "cap"
    t0, t0_ns = time.monotonic(), time.time_ns()
    rec = subprocess.Popen([*IOLENS, "record", "-q", "-o", str(cap), "-p", str(pid), "-d", "60",
                            "-i", str(interval)], stderr=subprocess.DEVNULL)
    if since == "attach":
        t0 = attached_at(tmp, "cap/capture.json")
    held, killed_ns = kill_at(rec, t0, at)
    return {"killed_at_s": at, "bpf_programs_held": len(held),
            "bpf_programs_left": still_loaded(held), **analyze(cap, pid),
            **timing(cap, t0_ns, killed_ns)}


def daemon_case(tmp: Path, pid: int, at: float, interval: float, since: str) -> dict:
    root, status = tmp / "tree", tmp / "status.json"
    cfg = tmp / "iolens.toml"
    cfg.write_text(f'root = "{root}"\nstatus_file = "{status}"\ninterval_s = {interval}\n')
    start = [*IOLENS, "record", "--daemon", "--config", str(cfg)]
    t0, t0_ns = time.monotonic(), time.time_ns()
    d1 = subprocess.Popen(start, stderr=subprocess.DEVNULL)
    if since == "attach":
        t0 = attached_at(tmp, "tree/host=*/capture-*.json")
    held, killed_ns = kill_at(d1, t0, at)
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
            **analyze(root, pid), **timing(root, t0_ns, killed_ns)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--at", type=float, default=26.0, help="seconds until SIGKILL (default 26)")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--since", choices=("start", "attach"), default="start",
                    help="count --at from the recorder's start (default) or from when its "
                         "probes are attached (leaves out compiling them)")
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
        res = {"record": record_case(tmp, work.pid, a.at, a.interval, a.since),
               "daemon": daemon_case(tmp, work.pid, a.at, a.interval, a.since)}
    finally:
        work.terminate()
        work.wait(30)
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    for case, r in res.items():
        print(f"{case}: killed at {r['killed_at_s']:g} s after {a.since} -> analyze reads "
              f"{r.get('intervals')} intervals ({r.get('recovered_intervals')} recovered), "
              f"workload io rows {r.get('workload_io_rows')}, BPF programs left "
              f"{r['bpf_programs_left']} of {r['bpf_programs_held']}")
        print(f"  killed run: {r.get('killed_run_intervals_read')} intervals read, the first "
              f"{r.get('startup_s')} s after start (probes compiling), the last ending "
              f"{r.get('lost_s')} s before the kill")
        print(f"  {r.get('note') or r.get('error')}")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _common as C

    C.save("crash_kill" if a.since == "start" else "crash_kill_attach",
           {"at_s": a.at, "since": a.since, "interval_s": a.interval, **res})


if __name__ == "__main__":
    main()
