#!/usr/bin/env python3
"""Where the probe's time goes: the kernel's own per-program run time (bpf_stats) while the
syscall storm runs, for the iolens syscall probe built with several flag sets.

    sudo .venv/bin/python benchmarks/bpf_profile.py [--rounds 3] [--variants default,nolat]

kernel.bpf_stats_enabled is switched on for the measurement and restored afterwards (it adds
two clock reads per program run, to every BPF program of the machine, while on). The figure is
run_time_ns / run_cnt of each program (from /proc/self/fdinfo), i.e. ns spent inside the BPF
program per hit, which excludes the tracepoint dispatch itself (that is the floor measured by
overhead.py). Programs are loaded here through the probe's own loader (SyscallProbe), filter
mode 1 (targets map: only the storm's pid), as `iolens record -p PID` does. Raw numbers:
benchmarks/results/bpf_profile.json.
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

#: name -> (plan() keywords, extra -D flags)
VARIANTS = {
    "default": ({}, []),
    "nolat": ({"latency": False}, []),                         # exit-only data ops
    "nolat_enter_exit": ({"latency": False}, ["-DEXIT_ONLY=0"]),  # as before exit-only
    "hash_start": ({"task_storage": False}, []),
}
PROGS = ["sys_enter_pread64", "sys_exit_pread64", "sys_enter_sendto", "sys_exit_sendto",
         "sys_enter_recvfrom", "sys_exit_recvfrom"]
STATS = "/proc/sys/kernel/bpf_stats_enabled"


def prog_stats(fd: int) -> tuple[int, int]:
    t = c = 0
    for ln in open(f"/proc/self/fdinfo/{fd}"):
        if ln.startswith("run_time_ns:"):
            t = int(ln.split()[1])
        elif ln.startswith("run_cnt:"):
            c = int(ln.split()[1])
    return t, c


def one(storm: str, work: Path, variant: tuple[dict, list[str]]) -> dict:
    from iolens.probes import syscalls

    plan = syscalls.plan(filter_mode=1, self_tgid=os.getpid(), slow_ns=10**7, max_keys=65536,
                         per_thread=False, **variant[0])
    plan.cflags += variant[1]
    probe = syscalls.SyscallProbe(plan, lambda b: None)
    st = subprocess.Popen([storm, "bench", "-w", str(work)], stdout=subprocess.PIPE, text=True)
    try:
        assert st.stdout.readline().startswith("ready")
        probe.start()
        probe.add_target(st.pid)
        funcs = probe.prog.bpf.funcs
        fds = {p: funcs[f"tracepoint__syscalls__{p}".encode()].fd for p in PROGS
               if f"tracepoint__syscalls__{p}".encode() in funcs}  # exit-only modes: no enter
        before = {p: prog_stats(fd) for p, fd in fds.items()}
        st.send_signal(signal.SIGUSR1)
        storm_res = json.loads(st.stdout.read().strip().splitlines()[-1])
        st.wait()
        after = {p: prog_stats(fd) for p, fd in fds.items()}
        probe.drain()
    finally:
        if st.poll() is None:
            st.kill()
        probe.close()
    out = {}
    for p in PROGS:
        if p not in fds:
            out[p] = {"ns_per_run": 0.0, "runs": 0, "attached": False}
            continue
        dt, dc = after[p][0] - before[p][0], after[p][1] - before[p][1]
        out[p] = {"ns_per_run": dt / dc if dc else None, "runs": dc}
    out["storm_cpu"] = {k: v["cpu"] for k, v in storm_res.items() if k != "n"}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", default="default,nolat,nolat_enter_exit")
    ap.add_argument("--name", help="results file name (default bpf_profile)")
    a = ap.parse_args(argv)
    C.need_root()
    names = a.variants.split(",")
    work = C.tmpdir("iolens-prof-")
    storm = C.build_storm(work)
    old = open(STATS).read().strip()
    samples: dict[str, list[dict]] = {n: [] for n in names}
    t0 = time.monotonic()
    try:
        open(STATS, "w").write("1\n")
        for r in range(a.rounds):
            for n in names[r % len(names):] + names[:r % len(names)]:
                samples[n].append(one(storm, work, VARIANTS[n]))
    finally:
        open(STATS, "w").write(old + "\n")
        C.rmtree(work)
    rows = []
    summary: dict = {}
    for n in names:
        summary[n] = {}
        row = [n]
        for p in PROGS:
            xs = [s[p]["ns_per_run"] for s in samples[n] if s[p]["ns_per_run"] is not None]
            mn, md = C.mn_md(xs)
            summary[n][p] = {"min": mn, "median": md}
            attached = any(s[p].get("attached", True) for s in samples[n])
            row.append(f"{mn:.0f} / {md:.0f}" if attached else "not attached")
        pair = [summary[n][f"sys_{d}_pread64"]["median"] for d in ("enter", "exit")]
        summary[n]["pread64_pair_median"] = sum(pair)
        row.append(f"{sum(pair):.0f}")
        for c in ("pread4k", "tcp", "getppid"):
            mn, md = C.mn_md([s["storm_cpu"][c] for s in samples[n]])
            summary[n][f"storm_cpu_{c}"] = {"min": mn, "median": md}
            row.append(f"{mn:.0f} / {md:.0f}")
        rows.append(row)
    text = C.table(["variant", *PROGS, "pread64 enter+exit",
                    "storm pread 4 KiB ns", "storm TCP ns", "storm getppid ns"], rows)
    print(f"ns inside each BPF program per run (bpf_stats), min / median over {a.rounds} rounds; "
          "storm: thread CPU ns per syscall with that variant attached (bpf_stats on)")
    print(text)
    ap_name = "bpf_profile" if a.name is None else a.name
    p = C.save(ap_name, {"rounds": a.rounds, "variants": {n: VARIANTS[n] for n in names},
                               "samples": samples, "summary": summary, "table": text,
                               "wall_s": time.monotonic() - t0})
    print(f"raw numbers: {C.rel(p)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
