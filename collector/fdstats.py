"""Open file descriptors and their limit, per traced process, once per interval (issue 19).

Fills the `fds` table (collector/schema.py): `open_fds` is the number of entries of
/proc/PID/fd at the interval's end; `fd_limit` the soft RLIMIT_NOFILE from /proc/PID/limits,
read once per process and cached (a process rarely changes its own limit; a new process with
a reused pid is told apart by its start time). A process that is gone or unreadable is left
out of the interval (no row), never an error.

Cost: one ``listdir`` of /proc/PID/fd per process and interval (the kernel builds the listing
from the fd table; ~10-40 us for a few dozen fds), plus one small file read per new process.
`benchmarks/fdstats_cost.py` measures it with many processes.
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
    """Entries of /proc/PID/fd (None: gone or not readable)."""
    try:
        return len(os.listdir(f"{proc}/{pid}/fd"))
    except OSError:
        return None


def _start_ticks(pid: int, proc: str) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks): tells a reused pid apart."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            raw = f.read()
        return int(raw[raw.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


class FdStats:
    """Samples open fds per process; caches each process's limit (keyed by pid and start)."""

    def __init__(self, proc: str = PROC) -> None:
        self.proc = proc
        self._limits: dict[int, tuple[int | None, int | None]] = {}

    def limit(self, pid: int) -> int | None:
        """The cached soft fd limit of `pid`, read on first sight (or after pid reuse)."""
        start = _start_ticks(pid, self.proc)
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
            out.append((pid, getattr(c, "comm", c), n, self.limit(pid)))
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


_default = FdStats()


def table(procs: Mapping[int, Any], start_ns: int, interval_s: float, host: str) -> pa.Table:
    """`FdStats.table` on the module's shared sampler (what collector/live.py calls)."""
    return _default.table(procs, start_ns, interval_s, host)
