#!/usr/bin/env python3
"""How fast does `iolens analyze` go? A large synthetic capture, analysed by the real code
(DuckDB over the Parquet files), and the same questions answered by pandas, side by side.

    .venv/bin/python benchmarks/analyze_speed.py                 # 10M io rows (default)
    .venv/bin/python benchmarks/analyze_speed.py --rows 100000000 --keep /tmp/big
    .venv/bin/python benchmarks/analyze_speed.py --rows 1000000 --pandas-rows 1000000

The capture is written with the real schema (file metadata included) in chunks, so memory
stays small. pandas reads the io table and does the same reductions (group sums per process /
op / kind, per resource, per interval, merged latency histograms); by default it runs on at most
--pandas-rows rows (it needs the whole table in memory), and rates are compared per row.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from iolens.collector import schema as S  # noqa: E402
from iolens.collector.capture import CaptureMeta, write_meta  # noqa: E402

T0 = 1_764_000_000_000_000_000
CHUNK = 1_000_000
OPS = np.array(["read", "write", "open", "close", "stat", "fsync", "send", "recv"])
KIND_OF = {"send": "socket", "recv": "socket"}


def chunk_table(n: int, start_row: int, rng: np.random.Generator, pids: int,
                files: int, rows_per_interval: int) -> pa.Table:
    """n io rows of plausible shape: 8 ops, `pids` processes, `files` resources."""
    op = OPS[rng.integers(0, len(OPS), n)]
    kind = np.where(np.isin(op, ["send", "recv"]), "socket", "file")
    res_id = rng.integers(0, files, n)
    resource = np.where(kind == "socket", np.char.add("tcp:10.0.0.", (res_id % 8).astype(str)),
                        np.char.add("/data/shard", res_id.astype(str)))
    count = rng.integers(1, 200, n)
    lat = rng.lognormal(9.5, 1.5, n).astype(np.int64) + 100
    bucket = np.clip(np.log2(lat).astype(np.int64), 0, S.LAT_BUCKETS - 1)
    # latency histogram: all ops of the row in the bucket of its latency, list trimmed after it
    lengths = bucket + 1
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    values = np.zeros(offsets[-1], dtype=np.int64)
    values[offsets[1:] - 1] = count
    ts = T0 + ((start_row + np.arange(n)) // rows_per_interval) * 1_000_000_000
    cols = {
        "ts": pa.array(ts, pa.int64()).cast(S.TS), "interval_s": np.full(n, 1.0),
        "host": pa.array(np.full(n, "bench"), pa.string()),
        "pid": rng.integers(1000, 1000 + pids, n).astype(np.int32),
        "tid": pa.nulls(n, pa.int32()), "comm": pa.array(np.full(n, "python"), pa.string()),
        "op": op, "kind": kind, "resource": resource, "count": count,
        "bytes": np.where(np.isin(op, ["read", "write", "send", "recv"]),
                          count * rng.integers(512, 1 << 20, n), 0),
        "errors": np.zeros(n, dtype=np.int64), "lat_sum_ns": lat * count, "lat_max_ns": lat * 2,
        "lat_hist": pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)),
        "syscall": op, "fd": np.full(n, 3, dtype=np.int32),
        "size_hist": pa.nulls(n, pa.list_(pa.int64())),
        "random_ops": rng.integers(0, 2, n) * count,
        "file_class": pa.array(np.where(kind == "file", "dataset", None), pa.string()),
        "cgroup_id": np.ones(n, dtype=np.int64),
        "grain": pa.array(np.full(n, "file"), pa.string()),
    }
    return pa.Table.from_pydict({f.name: cols[f.name] for f in S.IO}, schema=S.IO)


def make_capture(path: Path, rows: int, pids: int = 64, files: int = 1000,
                 rows_per_interval: int = 5000, files_rows: int = 10_000_000) -> None:
    """Write a capture of `rows` io rows (one Parquet file per `files_rows`)."""
    rng = np.random.default_rng(42)
    (path / "io").mkdir(parents=True)
    schema = S.with_file_metadata(S.IO, "io")
    done, part = 0, 0
    while done < rows:
        n_file = min(files_rows, rows - done)
        with pq.ParquetWriter(path / "io" / f"part-{part:06d}.parquet", schema,
                              compression="zstd") as w:
            written = 0
            while written < n_file:
                n = min(CHUNK, n_file - written)
                w.write_table(chunk_table(n, done + written, rng, pids, files,
                                          rows_per_interval))
                written += n
        done += n_file
        part += 1
    write_meta(path, CaptureMeta(iolens_version="bench", host="bench", complete=True,
                                 started="2025-11-24T16:00:00Z"))


def time_iolens(path: Path) -> tuple[float, float, dict]:
    """(wall s, CPU s of all threads, report) of one analysis."""
    from iolens.analysis.analyze import analyze_path
    t0, c0 = time.perf_counter(), time.process_time()
    report = analyze_path(path, plots=False)  # what `iolens analyze --json` does
    return time.perf_counter() - t0, time.process_time() - c0, report.to_json()


def time_pandas(path: Path, max_rows: int) -> tuple[float, float, int]:
    """The same reductions in pandas (read included); returns (wall s, CPU s, rows)."""
    t0, c0 = time.perf_counter(), time.process_time()
    batches, got = [], 0
    for part in sorted((path / "io").glob("part-*.parquet")):  # some parts may be empty
        for b in pq.ParquetFile(part).iter_batches(batch_size=CHUNK):
            batches.append(b)
            got += b.num_rows
            if got >= max_rows:
                break
        if got >= max_rows:
            break
    df = pa.Table.from_batches(batches).slice(0, max_rows).to_pandas()
    df["file_class"] = df["file_class"].fillna("")
    sums = {"count": "sum", "bytes": "sum", "errors": "sum", "lat_sum_ns": "sum",
            "lat_max_ns": "max", "random_ops": "sum"}
    by_op = df.groupby(["host", "pid", "op", "kind", "file_class"]).agg(sums)
    df.groupby(["host", "pid", "op", "kind", "resource"]).agg(sums)
    df.groupby(["ts", "host", "pid", "kind", "file_class"])[["count", "bytes",
                                                            "lat_sum_ns"]].sum()
    df.groupby(["host", "pid"]).agg(first=("ts", "min"), last=("ts", "max"))
    hist = np.zeros((len(df), S.LAT_BUCKETS), dtype=np.int64)
    for i, h in enumerate(df["lat_hist"]):  # pandas has no vectorised list-column sum
        hist[i, : len(h)] = h
    g = df.groupby(["host", "pid", "op", "kind", "file_class"]).ngroup().to_numpy()
    merged = np.zeros((len(by_op), S.LAT_BUCKETS), dtype=np.int64)
    np.add.at(merged, g, hist)
    return time.perf_counter() - t0, time.process_time() - c0, len(df)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--pandas-rows", type=int, default=2_000_000)
    ap.add_argument("--files", type=int, default=1000,
                    help="distinct files shared by the 64 processes (default 1000)")
    ap.add_argument("--keep", metavar="DIR", help="write (or reuse) the capture here")
    args = ap.parse_args()
    path = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="iolens-bench-"))
    try:
        if not (path / "io").exists():
            t0 = time.perf_counter()
            make_capture(path, args.rows, files=args.files)
            print(f"generated {args.rows:,} io rows in {time.perf_counter() - t0:.1f} s "
                  f"({sum(p.stat().st_size for p in path.rglob('*.parquet')) / 1e6:,.0f} MB)")
        rows = sum(pq.ParquetFile(p).metadata.num_rows for p in (path / "io").glob("*.parquet"))
        dt, cpu, out = time_iolens(path)
        pd_rows = min(rows, args.pandas_rows)
        pdt, pcpu, pd_rows = time_pandas(path, pd_rows)
        print(f"{'engine':<22}{'rows':>14}{'wall s':>9}{'cpu s':>8}{'rows/s':>13}"
              f"{'rows/cpu-s':>13}")
        for name, n, w, c in (("iolens analyze", rows, dt, cpu),
                              ("pandas (same sums)", pd_rows, pdt, pcpu)):
            print(f"{name:<22}{n:>14,}{w:>9.2f}{c:>8.2f}{n / w:>13,.0f}{n / c:>13,.0f}")
        print(f"load average: {os.getloadavg()[0]:.1f}")
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import _common as C

        C.save("analyze_speed", {
            "rows": rows, "files": args.files,
            "parquet_bytes": sum(p.stat().st_size for p in path.rglob("*.parquet")),
            "iolens": {"rows": rows, "wall_s": dt, "cpu_s": cpu},
            "pandas": {"rows": pd_rows, "wall_s": pdt, "cpu_s": pcpu},
            "findings": len(out["findings"]), "loadavg_end": os.getloadavg()})
        print(f"cpus: {os.cpu_count()}; findings: {len(out['findings'])}; "
              f"verdict: {json.dumps(out['verdict']['summary'])}")
    finally:
        if not args.keep:
            shutil.rmtree(path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
