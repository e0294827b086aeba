"""A generated fleet capture: a hive tree of several hosts, millions of io rows, one straggler.

    python -m tests.analysis.fleet OUT [--hosts 4] [--rows 1200000] [--straggler 2]

Written with the real `CaptureWriter(layout="hive")`, so the tree is exactly what
`iolens record --daemon --layout hive` leaves on a fleet's shared storage:
``OUT/host=<h>/date=<d>/<table>/part-N.parquet`` plus ``OUT/host=<h>/capture-*.json``.
The capture starts half-way through its intervals before midnight UTC, so every host has
two ``date=`` partitions.

Each host runs one trainer (its RANK = the host's index) and `workers` DataLoader workers
that read shards of a dataset (1 MiB reads, a few opens) and the trainer waits on them over a
pipe. The straggler host's reads take `slow` times longer (its storage is slower), so it is
both the slowest host in I/O time and the host with the slowest storage. Its clock metadata
also says NTP is unsynchronised with a large error bound (`skew=True`), which analysis
reports in its health section.

Pids differ between hosts (host index * 10000 + ...) unless `distinct_pids=False`: the
per-process rules key on pid alone (analysis reports pids shared by hosts in its health).
Latencies vary with a seeded RNG, so the output is reproducible and sums are not trivial.
"""

from __future__ import annotations

import argparse
import calendar
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from iolens.collector import schema as S
from iolens.collector.capture import CaptureMeta, CaptureWriter

#: 2025-11-25 00:00:00 UTC; the capture is centred on it (two date= partitions per host)
MIDNIGHT_S = calendar.timegm((2025, 11, 25, 0, 0, 0))
READ_BYTES = 1 << 20
FILES = 64  # shard files per host


@dataclass
class Fleet:
    """What was generated (the tests' golden facts)."""

    root: Path
    hosts: list[str]
    straggler: str
    io_rows: int
    intervals: int


def host_name(i: int) -> str:
    return f"node{i:02d}"


def _hist(lat_ns: np.ndarray, counts: np.ndarray, buckets: int) -> pa.Array:
    """list<int64> histograms: all of a row's `count` ops in the bucket of its latency."""
    n = len(lat_ns)
    b = np.clip(np.floor(np.log2(np.maximum(lat_ns, 1))).astype(np.int64), 0, buckets - 1)
    vals = np.zeros((n, buckets), dtype=np.int64)
    vals[np.arange(n), b] = counts
    offsets = np.arange(0, (n + 1) * buckets, buckets, dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(vals.ravel()))


def _io_chunk(rng: np.random.Generator, host: str, trainer: int, t0_s: int, n_iv: int,
              rows_per_iv: int, workers: int, slow: float) -> pa.Table:
    """io rows of `n_iv` intervals of one host, built column-wise (fast for millions).
    `trainer`: the trainer's pid; its workers follow it."""
    wpids = np.array([trainer + 1 + w for w in range(workers)], dtype=np.int32)
    # per interval: rows_per_iv - 1 worker rows (reads, 1 in 8 an open) + 1 trainer pipe wait
    per = rows_per_iv - 1
    n = n_iv * per
    iv = np.repeat(np.arange(n_iv), per)
    j = np.tile(np.arange(per), n_iv)
    pid = wpids[j % workers]
    is_open = (j // workers) % 8 == 7  # every worker: 1 row in 8 is opens
    op = np.where(is_open, "open", "read")
    count = np.where(is_open, 1, 2 + (j % 3)).astype(np.int64)
    nbytes = np.where(is_open, 0, count * READ_BYTES).astype(np.int64)
    base = np.where(is_open, 40_000.0, 300_000.0)  # 40 µs opens, 0.3 ms per 1 MiB read
    lat = (base * rng.lognormal(0.0, 0.25, n) * np.where(is_open, 1.0, slow)).astype(np.int64)
    ts = (t0_s + iv).astype(np.int64) * 10**9
    res = np.char.add("/data/shards/shard-", ((j + iv) % FILES).astype(str))
    res = np.char.add(res, ".tar")
    # the trainer's wait on its workers (pipe read), rising with the host's I/O time
    wait = (0.06e9 * slow * rng.lognormal(0.0, 0.1, n_iv)).astype(np.int64)
    cols = {
        "ts": np.concatenate([ts, (t0_s + np.arange(n_iv)).astype(np.int64) * 10**9]),
        "interval_s": np.ones(n + n_iv),
        "host": [host] * (n + n_iv),
        "pid": np.concatenate([pid, np.full(n_iv, trainer, np.int32)]),
        "comm": ["pt_data_worker"] * n + ["python"] * n_iv,
        "op": np.concatenate([op, np.full(n_iv, "read")]),
        "kind": ["file"] * n + ["pipe"] * n_iv,
        "resource": np.concatenate([res, np.full(n_iv, "pipe:[4242]")]),
        "count": np.concatenate([count, np.ones(n_iv, np.int64)]),
        "bytes": np.concatenate([nbytes, np.full(n_iv, 4096, np.int64)]),
        "errors": np.zeros(n + n_iv, np.int64),
        "lat_sum_ns": np.concatenate([lat * count, wait]),
        "lat_max_ns": np.concatenate([lat, wait]),
        "syscall": np.concatenate([np.where(is_open, "openat", "read"), np.full(n_iv, "read")]),
        "fd": np.full(n + n_iv, 5, np.int32),
        "random_ops": np.zeros(n + n_iv, np.int64),
        "file_class": ["dataset"] * n + [None] * n_iv,
        "cgroup_id": np.ones(n + n_iv, np.int64),
    }
    arrays = []
    for f in S.IO:
        if f.name == "lat_hist":
            arrays.append(_hist(np.concatenate([lat, wait]), cols["count"], S.LAT_BUCKETS))
        elif f.name == "size_hist":
            sizes = np.where(cols["count"] > 0, cols["bytes"] // np.maximum(cols["count"], 1), 0)
            arrays.append(_hist(sizes, cols["count"], S.SIZE_BUCKETS))
        elif f.name == "ts":
            arrays.append(pa.array(cols["ts"], pa.int64()).cast(S.TS))
        elif f.name in cols:
            arrays.append(pa.array(cols[f.name], f.type))
        else:
            arrays.append(pa.nulls(n + n_iv, f.type))
    return pa.Table.from_arrays(arrays, schema=S.IO)


def _procs(host: str, hidx: int, trainer: int, workers: int, t0_s: int) -> pa.Table:
    pids = [trainer] + [trainer + 1 + w for w in range(workers)]
    n = len(pids)
    cols = {"ts": pa.array([t0_s * 10**9] * n, pa.int64()).cast(S.TS), "host": [host] * n,
            "pid": pids, "ppid": [1] + [trainer] * workers,
            "comm": ["python"] + ["pt_data_worker"] * workers,
            "cmdline": ["python train.py"] * n,
            "start_time": pa.array([t0_s * 10**9] * n, pa.int64()).cast(S.TS),
            "role": ["trainer"] + ["dataloader"] * workers, "rank": [hidx] + [None] * workers}
    return pa.Table.from_arrays([cols[f.name] if f.name in cols else pa.nulls(n, f.type)
                                 for f in S.PROCS], schema=S.PROCS)


def _health(host: str, t0_s: int, n_iv: int, rows: int) -> pa.Table:
    ts = pa.array((t0_s + np.arange(n_iv)) * 10**9, pa.int64()).cast(S.TS)
    cols = {"ts": ts, "interval_s": np.ones(n_iv), "host": [host] * n_iv,
            "io_rows": np.full(n_iv, rows), "event_rows": np.zeros(n_iv, np.int64),
            "lost_events": np.zeros(n_iv, np.int64), "agg_overflow": np.zeros(n_iv, np.int64),
            "fd_overflow": np.zeros(n_iv, np.int64), "drain_ms": np.full(n_iv, 0.5),
            "collector_cpu_s": np.full(n_iv, 0.01),
            "collector_rss_bytes": np.full(n_iv, 100 << 20), "keys": np.full(n_iv, rows)}
    return pa.Table.from_arrays([ts if f.name == "ts" else pa.array(cols[f.name], f.type)
                                 if f.name in cols else pa.array(np.zeros(n_iv), f.type)
                                 for f in S.HEALTH], schema=S.HEALTH)


def clock_samples(t0_s: int, n_iv: int, synced: bool, maxerror_us: float) -> list[dict]:
    """Clock samples as collector/clock.py records them (start, then every 60 intervals)."""
    return [{"realtime_ns": (t0_s + k) * 10**9, "monotonic_ns": (1000 + k) * 10**9,
             "read_ns": 120, "ntp_synced": synced, "ntp_maxerror_us": maxerror_us,
             "ntp_esterror_us": maxerror_us / 10} for k in range(0, n_iv, 60)]


def generate(root: str | Path, hosts: int = 4, rows: int = 1_200_000, straggler: int = 2,
             intervals: int = 240, workers: int = 8, slow: float = 4.0, skew: bool = True,
             seed: int = 7, part_intervals: int = 60, distinct_pids: bool = True) -> Fleet:
    """Write the fleet tree under `root` (must not exist or be empty); see module doc.

    `rows`: io rows in all (spread evenly over hosts and intervals). `distinct_pids=False`:
    every host uses the same pids (as hosts booted alike often do).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    rows_per_iv = max(2, rows // (hosts * intervals))
    t0 = MIDNIGHT_S - intervals // 2
    names = [host_name(i) for i in range(hosts)]
    total = 0
    for h, name in enumerate(names):
        bad = h == straggler
        meta = CaptureMeta(host=name, kernel="6.1.0-fleet", started=_iso(t0), mode="system",
                           interval_s=1.0, probes_attached=["syscalls", "procs"],
                           iolens_version="fleet-synth",
                           clock=clock_samples(t0, intervals, synced=not (bad and skew),
                                               maxerror_us=250_000.0 if bad and skew
                                               else 2_000.0 + 500.0 * h))
        w = CaptureWriter(root, meta, rotate_s=1e9, must_be_new=(h == 0), layout="hive")
        trainer = 100 + (h * 10000 if distinct_pids else 0)
        w.write_tables({"procs": _procs(name, h, trainer, workers, t0)}, ts_ns=t0 * 10**9)
        for start in range(0, intervals, part_intervals):
            n_iv = min(part_intervals, intervals - start)
            io = _io_chunk(rng, name, trainer, t0 + start, n_iv, rows_per_iv, workers,
                           slow if bad else 1.0)
            total += io.num_rows
            w.write_tables({"io": io, "health": _health(name, t0 + start, n_iv, rows_per_iv)},
                           ts_ns=(t0 + start) * 10**9)
            w.rotate()  # one part file per chunk: many files, two date= partitions
        meta.intervals = intervals
        meta.ended = _iso(t0 + intervals)
        w.close()
    return Fleet(root, names, names[straggler] if 0 <= straggler < hosts else "", total,
                 intervals)


def _iso(t_s: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_s))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--hosts", type=int, default=4)
    p.add_argument("--rows", type=int, default=1_200_000)
    p.add_argument("--straggler", type=int, default=2)
    p.add_argument("--intervals", type=int, default=240)
    a = p.parse_args(argv)
    t = time.monotonic()
    f = generate(a.out, a.hosts, a.rows, a.straggler, a.intervals)
    print(f"{f.root}: {len(f.hosts)} hosts, {f.io_rows:,} io rows, straggler {f.straggler} "
          f"({time.monotonic() - t:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
