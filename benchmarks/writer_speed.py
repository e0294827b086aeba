"""Capture writing speed: io rows/s through the real CaptureWriter, and bytes per row on disk.

usage: python benchmarks/writer_speed.py [--rows-per-interval N] [--intervals K] [--repeats R]

Rows are realistic (a few hundred processes, thousands of distinct paths, sparse histograms as
the collector writes them); the same tables are written R times and min/median reported.
Prints one table; raw numbers go to benchmarks/results/writer_speed.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from iolens.collector import schema as S  # noqa: E402
from iolens.collector.capture import CaptureMeta, CaptureWriter  # noqa: E402


def make_interval(n: int, ts_ns: int, rng: np.random.Generator) -> pa.Table:
    pids = rng.integers(1000, 1300, n).astype(np.int32)
    paths = [f"/data/imagenet/train/n{p % 1000:05d}/img_{i:06d}.JPEG" for i, p in
             enumerate(rng.integers(0, 20000, n))]
    ops = rng.choice(["read", "open", "close", "stat", "recv"], n, p=[.5, .15, .15, .1, .1])
    count = rng.integers(1, 50, n)
    lat_b = rng.integers(10, 20, n)
    hist = [[0] * int(b) + [int(c)] for b, c in zip(lat_b, count)]
    size = [[0] * 12 + [int(c)] for c in count]
    cols = {
        "ts": pa.array(np.full(n, ts_ns)).cast(S.TS), "interval_s": np.ones(n),
        "host": ["gpu-node-17"] * n, "pid": pids, "comm": ["pt_data_worker"] * n,
        "op": ops, "kind": ["file"] * n, "resource": paths, "count": count,
        "bytes": count * 4096, "errors": np.zeros(n, np.int64),
        "lat_sum_ns": count * (1 << lat_b), "lat_max_ns": (1 << lat_b) + 100,
        "lat_hist": hist, "syscall": ops, "fd": rng.integers(3, 64, n).astype(np.int32),
        "size_hist": size, "random_ops": np.zeros(n, np.int64), "file_class": ["dataset"] * n,
        "cgroup_id": np.ones(n, np.int64),
    }
    return S.to_table("io", cols)


def run_once(tables: list[pa.Table]) -> tuple[float, int]:
    d = Path(tempfile.mkdtemp(prefix="iolens-wspeed-"))
    try:
        w = CaptureWriter(d / "cap", CaptureMeta(), rotate_s=1e9)
        t0 = time.perf_counter()
        for t in tables:
            w.write_tables({"io": t})
        w.close()
        dt = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (d / "cap" / "io").glob("*.parquet"))
        return dt, size
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows-per-interval", type=int, default=20000)
    ap.add_argument("--intervals", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(7)
    tables = [make_interval(a.rows_per_interval, 1_764_000_000 * 10**9 + i * 10**9, rng)
              for i in range(a.intervals)]
    rows = a.rows_per_interval * a.intervals
    times, sizes = [], []
    for _ in range(a.repeats):
        dt, size = run_once(tables)
        times.append(dt)
        sizes.append(size)
    res = {"rows": rows, "seconds": times, "bytes": sizes[0],
           "rows_per_s_median": rows / statistics.median(times),
           "rows_per_s_best": rows / min(times),
           "ms_per_interval_median": statistics.median(times) / a.intervals * 1e3,
           "bytes_per_row": sizes[0] / rows}
    print(f"{'rows':>10} {'rows/s (median)':>16} {'rows/s (best)':>14} {'ms/interval':>12} "
          f"{'bytes/row':>10}")
    print(f"{rows:>10} {res['rows_per_s_median']:>16,.0f} {res['rows_per_s_best']:>14,.0f} "
          f"{res['ms_per_interval_median']:>12.1f} {res['bytes_per_row']:>10.2f}")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _common as C

    C.save("writer_speed", {**res, "rows_per_interval": a.rows_per_interval,
                            "intervals": a.intervals, "repeats": a.repeats})


if __name__ == "__main__":
    main()
