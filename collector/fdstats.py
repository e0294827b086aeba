"""Open file descriptors and their limit, per traced process, once per interval (issue 19).

Fills the `fds` table (collector/schema.py): `open_fds` is the number of entries of
/proc/PID/fd at the interval's end; `fd_limit` the soft RLIMIT_NOFILE from /proc/PID/limits,
read once per process and cached (a process rarely changes its own limit; a new process with
a reused pid is told apart by the start time the collector knows). A process that is gone or
unreadable is left out of the interval (no row), never an error.

Cost: one ``stat`` of /proc/PID/fd per process and interval on Linux >= 6.2 (its size is the
fd count; older kernels: a listing), plus one small file read per new process.
``python -m iolens.collector.fdstats [NPROCS [FDS_EACH]]`` measures it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
from iolens.collector import schema as S

PROC = "/proc"


def read_limit(pid: int, proc: str = PROC) -> int | None:
    """Soft 'Max open files' of `pid` (None: unlimited, gone or unreadable)."""
    try:
        with open(f"{proc}/{pid}/limits", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Max open files"):
                    soft = line[len("Max open files"):].split()[0]
                    return None if soft == "unlimited" else int(soft)
    except (OSError, ValueError, IndexError):
        return None
    return None


def count_fds(pid: int, proc: str = PROC) -> int | None:
    """Open fds of `pid` (None: gone or not readable). Linux >= 6.2 reports the count as the
    size of /proc/PID/fd (one stat); older kernels report 0 there, and the directory is
    listed instead."""
    d = f"{proc}/{pid}/fd"
    try:
        n = os.stat(d).st_size if proc == PROC else 0  # a directory's size elsewhere
        return n if n > 0 else len(os.listdir(d))
    except OSError:
        return None


class FdStats:
    """Samples open fds per process; caches each process's limit, keyed by pid and the
    process's start time as the caller knows it (a reused pid is a new process)."""

    def __init__(self, proc: str = PROC) -> None:
        self.proc = proc
        self._limits: dict[int, tuple[Any, int | None]] = {}

    def limit(self, pid: int, start: Any = None) -> int | None:
        """The cached soft fd limit of `pid`, read on first sight (or when `start` changed)."""
        hit = self._limits.get(pid)
        if hit is None or hit[0] != start:
            hit = (start, read_limit(pid, self.proc))
            self._limits[pid] = hit
        return hit[1]

    def sample(self, pids: Iterable[int], comms: Mapping[int, Any] | None = None
               ) -> list[tuple[int, str | None, int, int | None]]:
        """(pid, comm, open_fds, fd_limit) for each readable process of `pids`; forgets the
        cached limits of processes no longer asked for."""
        out = []
        wanted = set(pids)
        for pid in sorted(wanted):
            n = count_fds(pid, self.proc)
            if n is None:
                continue
            c = comms.get(pid) if comms else None
            out.append((pid, getattr(c, "comm", None), n,
                        self.limit(pid, getattr(c, "start_ns", None))))
        for gone in set(self._limits) - wanted:
            del self._limits[gone]
        return out

    def table(self, procs: Mapping[int, Any], start_ns: int, interval_s: float,
              host: str) -> pa.Table:
        """The `fds` rows of one interval for the traced processes `procs` (pid -> info with
        an optional `comm` and `exit_ns`; exited processes are skipped)."""
        live = [p for p, i in procs.items() if getattr(i, "exit_ns", None) is None]
        rows = self.sample(live, procs)
        return S.to_table("fds", {
            "ts": [start_ns] * len(rows), "interval_s": [interval_s] * len(rows),
            "host": [host] * len(rows), "pid": [r[0] for r in rows],
            "comm": [r[1] for r in rows], "open_fds": [r[2] for r in rows],
            "fd_limit": [r[3] for r in rows]})



def _bench(nprocs: int = 64, fds_each: int = 32, rounds: int = 50) -> dict[str, float]:
    """Cost of one interval's sample over `nprocs` processes holding `fds_each` open fds:
    a cold round (limits read) and warm rounds (limits cached), in ms per interval."""
    import subprocess
    import sys
    import time

    code = (f"import os,sys,time\nfds=[os.open('/dev/null', os.O_RDONLY) for _ in "
            f"range({fds_each})]\nsys.stdout.write('r');sys.stdout.flush();time.sleep(600)")
    kids = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
            for _ in range(nprocs)]
    try:
        for k in kids:
            k.stdout.read(1)  # type: ignore[union-attr]
        procs = {k.pid: None for k in kids}
        S.to_table("fds", {"pid": [0]})  # pyarrow's first use (once per collector) not counted
        st = FdStats()
        t0 = time.perf_counter()
        st.table(procs, 0, 1.0, "h")
        cold = time.perf_counter() - t0
        warm = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            t = st.table(procs, 0, 1.0, "h")
            warm.append(time.perf_counter() - t0)
        assert t.num_rows == nprocs
        warm.sort()
        return {"processes": nprocs, "fds_each": fds_each, "cold_ms": round(cold * 1e3, 3),
                "warm_median_ms": round(warm[len(warm) // 2] * 1e3, 3),
                "warm_p90_ms": round(warm[int(len(warm) * 0.9)] * 1e3, 3),
                "per_process_us": round(warm[len(warm) // 2] * 1e6 / nprocs, 1)}
    finally:
        for k in kids:
            k.kill()
            k.wait()


if __name__ == "__main__":  # python -m iolens.collector.fdstats [NPROCS [FDS_EACH]]
    import json
    import sys

    a = [int(x) for x in sys.argv[1:3]]
    print(json.dumps(_bench(*a)))
