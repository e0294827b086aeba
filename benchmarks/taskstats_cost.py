"""Cost of the `cpu` table: reading /proc/PID/task/TID/schedstat (and comm) of every thread of
the traced processes once per interval (collector/taskstats.py).

Starts P sleeping processes of T threads each, then times TaskStats.sample over all of them,
R rounds; prints µs per thread and ms per interval side by side for each size.
Usage: python benchmarks/taskstats_cost.py [--procs 16 64 256] [--threads 4] [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from iolens.collector.taskstats import TaskStats

CHILD = ("import threading, time\n"
         "ts = [threading.Thread(target=time.sleep, args=(600,), daemon=True)\n"
         "      for _ in range({n})]\n"
         "[t.start() for t in ts]\nprint('up', flush=True)\ntime.sleep(600)\n")


def measure(procs: int, threads: int, rounds: int) -> tuple[int, float, float]:
    kids = [subprocess.Popen([sys.executable, "-c", CHILD.format(n=threads - 1)],
                             stdout=subprocess.PIPE, text=True) for _ in range(procs)]
    try:
        for k in kids:
            k.stdout.readline()
        pids = {k.pid: 0 for k in kids}
        ts = TaskStats(0)  # every process counts as started inside the capture
        ts.sample(pids, pids)
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            cols = ts.sample(pids, pids)
            times.append(time.perf_counter() - t0)
        n = procs * threads
        del cols
        med = statistics.median(times)
        return n, med / n * 1e6, med * 1e3
    finally:
        for k in kids:
            k.kill()
            k.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    print(f"{'processes':>9} {'threads':>8} {'us/thread':>10} {'ms/interval':>12}")
    for p in a.procs:
        n, per, total = measure(p, a.threads, a.rounds)
        print(f"{p:>9} {n:>8} {per:>10.1f} {total:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
