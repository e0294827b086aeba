"""Synthetic DataLoader-IPC captures (issue 19) with golden figures derived from the builders'
arguments, for analysis/rules/ipc.py.

A trainer (pid 500) and two loader workers (501, 502; ppid 500) over N = 10 intervals of 1 s.
Per interval: `batches` batches of `per_batch` objects (tensors), split evenly between the
workers. Per object the trainer connects to a worker's unix socket (fd passing, 10 us),
reads 6 times (40 us each: the handshake), receives the fd with recvmsg (30 us) and maps the
segment (5 us, 4 KiB); each worker opens and maps its segments under /dev/shm/ (20 us, 5 us),
accepts every connection (2^15 ns each, one histogram bucket) and reads 3 times per object
on the socket (10 us: blocked while the trainer works inside the handshake). The trainer reads
its result pipe twice per batch (100 us) and writes one index message per batch.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from tests import factories as F
from tests.analysis import synth

TRAINER, WORKERS = 500, (501, 502)
SOCK, SHM, PIPE = "unix:/tmp/pymp-x/listener-1", "/dev/shm/", "pipe:[77]"
ACCEPT_NS = 1 << 15
#: median of a histogram whose samples all fall in bucket [2^15, 2^16): interpolated to the
#: middle of the bucket (analysis.metrics.hist_quantiles)
ACCEPT_MEDIAN_NS = 1.5 * ACCEPT_NS


def procs() -> list[dict]:
    return [synth._proc(TRAINER, role="trainer")] + [
        synth._proc(w, comm="pt_data_worker", role="dataloader", ppid=TRAINER)
        for w in WORKERS]


def interval_rows(k: int, batches: int, per_batch: int) -> list[dict]:
    """The io rows of interval k."""
    ts = F.T0 + k * 10**9
    obj = batches * per_batch
    half = obj // 2
    rows = [
        F.io_row(pid=TRAINER, op="connect", resource=SOCK, count=obj, nbytes=0, lat_ns=10_000),
        F.io_row(pid=TRAINER, op="recv", resource=SOCK, count=6 * obj, nbytes=6 * obj * 20,
                 lat_ns=40_000, syscall="read"),
        F.io_row(pid=TRAINER, op="recv", resource=SOCK, count=obj, nbytes=obj,
                 lat_ns=30_000, syscall="recvmsg"),
        F.io_row(pid=TRAINER, op="mmap", resource=SHM + "torch_1", kind="device", count=obj,
                 nbytes=4096 * obj, lat_ns=5_000),
        F.io_row(pid=TRAINER, op="read", resource=PIPE, kind="pipe", count=2 * batches,
                 nbytes=2000 * batches, lat_ns=100_000),
        F.io_row(pid=TRAINER, op="write", resource="pipe:[78]", kind="pipe", count=batches,
                 nbytes=50 * batches, lat_ns=5_000),
    ]
    for w in WORKERS:
        rows += [
            F.io_row(pid=w, comm="pt_data_worker", op="open", resource=SHM, count=half,
                     nbytes=0, lat_ns=20_000),
            F.io_row(pid=w, comm="pt_data_worker", op="mmap", resource=SHM, count=half,
                     nbytes=4096 * half, lat_ns=5_000),
            F.io_row(pid=w, comm="pt_data_worker", op="accept", resource="unix:?",
                     count=half, nbytes=0, lat_ns=ACCEPT_NS, syscall="accept4"),
            F.io_row(pid=w, comm="pt_data_worker", op="recv", resource="unix:@anonymous",
                     count=3 * half, nbytes=3 * half * 20, lat_ns=10_000, syscall="read"),
        ]
    return [{**r, "ts": ts} for r in rows]


def loader(per_batch: int = 64, batches: int = 10, n: int = synth.N
           ) -> tuple[synth.Tables, dict[str, Any]]:
    """A loader capture and its golden figures (see the module docstring)."""
    rows = [r for k in range(n) for r in interval_rows(k, batches, per_batch)]
    objects = n * batches * per_batch
    nb = n * batches  # min(pipe reads / 2, pipe writes)
    trainer_sys = n * batches * per_batch * (10_000 + 6 * 40_000 + 30_000 + 5_000) / 1e9
    handshake = n * batches * per_batch * 3 * 10_000 / 1e9
    gap = (objects - nb) * ACCEPT_MEDIAN_NS / 1e9
    ipc = trainer_sys + handshake + gap
    wall = float(n)
    return synth._tables(rows, procs(), n), {
        "pid": TRAINER, "objects": objects, "batches": nb, "objects_per_batch": per_batch,
        "trainer_ipc_syscall_s": trainer_sys, "trainer_handshake_work_s": handshake,
        "trainer_per_object_work_s": gap, "trainer_ipc_s": ipc, "wall_s": wall,
        "impact_s": ipc * (1 - 1 / per_batch), "bytes_per_object": 4096,
        "trainer_wait_s": n * 2 * batches * 100_000 / 1e9}


def with_startup(tables: synth.Tables, startup_s: tuple[float, float],
                 shipped_per_interval: int, shipped_intervals: int = 5
                 ) -> tuple[synth.Tables, dict[str, Any]]:
    """Add fork events (worker i forked at 0.1 * (i + 1) s) and each worker's first segment
    mapping `startup_s[i]` later, and `shipped_per_interval` bytes read from a pipe by each
    worker in its first `shipped_intervals` intervals (all before its first batch)."""
    forks = [F.T0 + int(0.1e9 * (i + 1)) for i in range(len(WORKERS))]
    first = [f + int(s * 1e9) for f, s in zip(forks, startup_s, strict=True)]
    n = len(WORKERS)
    ev = synth.with_table(tables, "events", {
        "ts": forks + first, "host": [F.HOST] * 2 * n,
        "pid": [TRAINER] * n + list(WORKERS), "type": ["fork"] * n + ["mmap"] * n,
        "resource": [None] * n + [SHM + f"torch_{w}_1" for w in WORKERS],
        "detail": [f"child={w}" for w in WORKERS] + [None] * n})
    extra = [F.io_row(pid=w, comm="pt_data_worker", op="read", resource=f"pipe:[9{w}]",
                      kind="pipe", count=100, nbytes=shipped_per_interval, lat_ns=1_000,
                      ts=F.T0 + k * 10**9)
             for w in WORKERS for k in range(shipped_intervals)]
    io = pa.concat_tables([ev["io"], F.io_table(extra)])
    ordered = sorted(first)
    return {**ev, "io": io}, {
        "startup_median_s": sorted(startup_s)[n // 2 - 1] / 2 + sorted(startup_s)[n // 2] / 2,
        "first_batch_delay_s": (ordered[0] - min(forks)) / 1e9,
        "shipped_bytes_per_worker": shipped_per_interval * shipped_intervals}


def with_fds(tables: synth.Tables, pid: int, counts: list[int], limit: int
             ) -> synth.Tables:
    """Add an `fds` table: `pid`'s open fds per interval and its soft limit."""
    n = len(counts)
    return synth.with_table(tables, "fds", {
        "ts": [F.T0 + k * 10**9 for k in range(n)], "host": [F.HOST] * n, "pid": [pid] * n,
        "comm": ["python"] * n, "open_fds": counts, "fd_limit": [limit] * n})
