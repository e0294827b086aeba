#!/usr/bin/env python3
"""How long does detaching the syscall probe take, one tracepoint at a time (BCC's cleanup)
vs from a thread pool (what probes/_bcc.py does)? Side by side, interleaved rounds.

    sudo .venv/bin/python benchmarks/detach_cost.py --rounds 2

Each round compiles and attaches the syscall probe (filtered to this process: nothing is
traced) twice and times the detach of all its tracepoints both ways. The kernel waits for an
RCU grace period after each released perf tracepoint event, which is what both pay.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def once(parallel: bool) -> tuple[int, float]:
    from bcc import BPF
    from iolens.probes import _bcc, syscalls

    plan = syscalls.plan(filter_mode=1, self_tgid=os.getpid(), slow_ns=10**7,
                         max_keys=16384, per_thread=False)
    b = BPF(text=syscalls.program_text().encode(),
            cflags=plan.cflags + ["-I" + str(syscalls.HERE)])
    n = len(b.tracepoint_fds)
    t0 = time.perf_counter()
    if parallel:
        _bcc._detach_tracepoints(b)
    else:
        for tp in list(b.tracepoint_fds):
            b.detach_tracepoint(tp)
    dt = time.perf_counter() - t0
    b.cleanup()
    return n, dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    got: dict[str, list[float]] = {"one by one": [], "thread pool": []}
    n = 0
    for _ in range(a.rounds):
        for mode in got:
            n, dt = once(mode == "thread pool")
            got[mode].append(dt)
    print(f"{'detach':<12} {'tracepoints':>11} {'median s':>9}")
    for mode, v in got.items():
        print(f"{mode:<12} {n:>11} {statistics.median(v):>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
