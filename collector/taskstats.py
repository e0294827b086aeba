"""On-CPU time of traced threads, per interval, from /proc/PID/task/TID/schedstat.

Why /proc and not a sched_switch probe: the scheduler's own accounting is exact to the
nanosecond, costs nothing in the kernel, and is read once per interval only for the processes
the capture already follows (13-14 µs per thread: benchmarks/taskstats_cost.py). A
sched_switch program would run on every context switch of the machine. What /proc cannot give:
the CPU a thread used between the last read and its exit (a short-lived worker's tail).

In: the pids to read, with their start times. Out: rows of the `cpu` table (collector/schema.py):
per thread, the on-CPU and run-queue nanoseconds and timeslices of the interval.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
from iolens.collector import schema as S


def read_schedstat(path: str) -> tuple[int, int, int] | None:
    """(on-CPU ns, run-queue wait ns, timeslices) of one task, None if it is gone."""
    try:
        with open(path, "rb") as f:
            parts = f.read().split()
        return int(parts[0]), int(parts[1]), int(parts[2])
    except (OSError, ValueError, IndexError):
        return None


def _read_comm(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().rstrip(b"\n").decode("utf-8", "replace")
    except OSError:
        return None


class TaskStats:
    """Cumulative per-thread counters turned into per-interval deltas.

    A thread seen for the first time counts from zero when its process started after the
    capture began (all of its CPU is inside the capture), else its first reading is only a
    baseline.
    """

    def __init__(self, capture_start_ns: int, proc_root: str = "/proc") -> None:
        self.capture_start_ns = capture_start_ns
        self.root = proc_root
        self._prev: dict[tuple[int, int], tuple[int, int, int]] = {}

    def sample(self, pids: Iterable[int], started_ns: Mapping[int, int | None]
               ) -> dict[str, list]:
        """Read every thread of `pids`; columns pid, tid, comm, cpu_ns, runq_ns, slices of the
        threads that ran or waited to run since the last sample."""
        out: dict[str, list] = {k: [] for k in ("pid", "tid", "comm", "cpu_ns", "runq_ns",
                                               "slices")}
        seen: set[tuple[int, int]] = set()
        for pid in pids:
            base = f"{self.root}/{pid}/task"
            try:
                tids = os.listdir(base)
            except OSError:
                continue
            fresh = (started_ns.get(pid) or 0) >= self.capture_start_ns
            for name in tids:
                if not name.isdigit():
                    continue
                key = (pid, int(name))
                now = read_schedstat(f"{base}/{name}/schedstat")
                if now is None:
                    continue
                seen.add(key)
                before = self._prev.get(key)
                self._prev[key] = now
                if before is None and not fresh:
                    continue
                before = before or (0, 0, 0)
                d = [max(a - b, 0) for a, b in zip(now, before, strict=True)]
                if d[0] == 0 and d[1] == 0:
                    continue
                # read each time: threads are often named after they start (pthread_setname)
                comm = _read_comm(f"{base}/{name}/comm")
                for col, v in zip(("pid", "tid", "comm", "cpu_ns", "runq_ns", "slices"),
                                  (pid, key[1], comm, *d), strict=True):
                    out[col].append(v)
        for key in set(self._prev) - seen:  # exited threads
            self._prev.pop(key, None)
        return out

    def table(self, procs: Mapping[int, Any], start_ns: int, interval_s: float,
              host: str) -> pa.Table:
        """The `cpu` rows of one interval for the traced processes `procs` (pid -> info with
        `start_ns` and `exit_ns`; exited processes are skipped)."""
        live = {p: getattr(i, "start_ns", None) for p, i in procs.items()
                if getattr(i, "exit_ns", None) is None}
        cols: dict[str, Any] = self.sample(live, live)
        n = len(cols["pid"])
        cols.update({"ts": [start_ns] * n, "interval_s": [interval_s] * n, "host": [host] * n})
        return S.to_table("cpu", cols)
