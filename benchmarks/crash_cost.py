"""What crash consistency costs the capture writer (issue 16), and the layouts it was chosen from.

usage: python benchmarks/crash_cost.py [--rows-per-interval N] [--intervals K] [--repeats R]
                                       [--baseline-rev REV] [--dir DIR]

The same K intervals of N io rows (realistic: benchmarks/writer_speed.make_interval) are
written as one rotation by each candidate, R times, interleaved; medians are reported:

- before: the writer before issue 16 (loaded from git at REV): one Parquet segment, one row
  group per interval, lost whole on a kill.
- wal/<fsync>: this writer: Arrow IPC write-ahead streams + commit log, compacted into
  Parquet at rotation, for each --fsync policy.
- per-interval: each interval its own Parquet file (fsync + rename), never merged.
- per-interval+merge: the same, merged into one file at rotation (read + re-encode).

Columns: writer CPU per interval (process time, all threads, compaction included), wall
time per interval, bytes per row of what stays on disk, files per rotation per table, and
the time DuckDB takes to scan the result (a GROUP BY over every row, as `analyze` does).
The output directory should be on a real disk (fsync costs nothing on tmpfs); default: a
temporary directory under /var/tmp. Raw numbers go to benchmarks/results/crash_cost.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from iolens.collector import schema as S  # noqa: E402
from iolens.collector.capture import CaptureMeta, CaptureWriter  # noqa: E402
from writer_speed import make_interval  # noqa: E402

#: the last commit before issue 16 (the writer that loses the open segment on a kill)
BASELINE_REV = "7da33cf"


def load_baseline(rev: str):
    """The capture module as it was at `rev` (its CaptureWriter), imported under another name."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:collector/capture.py"],
                         capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="iolens-baseline-")) / "capture_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("iolens.collector.capture_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while it is executed
    spec.loader.exec_module(mod)
    return mod


def write_with(writer_cls, meta_cls, **kw) -> Callable[[Path, list[pa.Table]], None]:
    def run(out: Path, tables: list[pa.Table]) -> None:
        w = writer_cls(out, meta_cls(), rotate_s=1e9, **kw)
        for t in tables:
            w.write_tables({"io": t})
        w.close()
    return run


def per_interval(merge: bool) -> Callable[[Path, list[pa.Table]], None]:
    """Candidate B: a complete Parquet file per interval (durable at once), optionally merged
    into one at rotation."""
    def run(out: Path, tables: list[pa.Table]) -> None:
        d = out / "io"
        d.mkdir(parents=True)
        schema = S.with_file_metadata(S.TABLES["io"], "io")
        files = []
        for i, t in enumerate(tables):
            p = d / f"part-{i:06d}.parquet"
            with open(str(p) + ".tmp", "wb") as fh:
                pq.write_table(t.cast(schema), fh, compression="zstd")
                fh.flush()
                os.fdatasync(fh.fileno())
            os.rename(str(p) + ".tmp", p)
            files.append(p)
        if merge:
            merged = pa.concat_tables(pq.read_table(p) for p in files)
            dest = d / "merged.parquet"
            pq.write_table(merged, dest, compression="zstd", row_group_size=65536)
            for p in files:
                os.unlink(p)
    return run


def scan_s(out: Path) -> float:
    """Seconds DuckDB takes to aggregate every io row of the result (median of 5)."""
    files = sorted(str(p) for p in out.rglob("*.parquet"))
    con = duckdb.connect(config={"threads": 1})
    lst = ", ".join(f"'{f}'" for f in files)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        con.sql("SELECT pid, op, SUM(count), SUM(bytes), SUM(lat_sum_ns) "
                f"FROM read_parquet([{lst}]) GROUP BY ALL").fetchall()
        times.append(time.perf_counter() - t0)
    con.close()
    return statistics.median(times)


def measure(run, tables: list[pa.Table], base: Path) -> dict:
    out = Path(tempfile.mkdtemp(dir=base)) / "cap"
    try:
        c0, w0 = time.process_time(), time.perf_counter()
        run(out, tables)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        files = [p for p in out.rglob("*") if p.is_file() and p.suffix == ".parquet"]
        rows = sum(t.num_rows for t in tables)
        return {"cpu_ms": cpu / len(tables) * 1e3, "wall_ms": wall / len(tables) * 1e3,
                "bytes_per_row": sum(p.stat().st_size for p in files) / rows,
                "files": len(files), "scan_s": scan_s(out)}
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows-per-interval", type=int, default=10000)
    ap.add_argument("--intervals", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline-rev", default=BASELINE_REV)
    ap.add_argument("--dir", default="/var/tmp")
    a = ap.parse_args()
    if a.rows_per_interval < 1 or a.intervals < 1 or a.repeats < 1:
        sys.exit("crash_cost: --rows-per-interval, --intervals and --repeats must be >= 1")
    base = Path(tempfile.mkdtemp(prefix="iolens-crashcost-", dir=a.dir))
    rng = np.random.default_rng(7)
    tables = [make_interval(a.rows_per_interval, 1_764_000_000 * 10**9 + i * 10**9, rng)
              for i in range(a.intervals)]
    before = load_baseline(a.baseline_rev)
    candidates = {"before": write_with(before.CaptureWriter, before.CaptureMeta)}
    for policy in ("interval", "rotate", "never"):
        candidates[f"wal/{policy}"] = write_with(CaptureWriter, CaptureMeta, fsync=policy,
                                                 background=True)  # as `iolens record`
    candidates["per-interval"] = per_interval(merge=False)
    candidates["per-interval+merge"] = per_interval(merge=True)
    raw: dict[str, list[dict]] = {k: [] for k in candidates}
    try:
        for _ in range(a.repeats):  # interleaved: drift on a shared machine hits all alike
            for name, run in candidates.items():
                raw[name].append(measure(run, tables, base))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in raw.items()}
    ref = med["before"]["cpu_ms"]
    print(f"{a.rows_per_interval} io rows per interval, {a.intervals} intervals per rotation, "
          f"median of {a.repeats}")
    print(f"{'candidate':20s} {'CPU ms/iv':>10s} {'vs before':>9s} {'wall ms/iv':>10s} "
          f"{'bytes/row':>9s} {'files':>5s} {'scan ms':>8s}")
    for n, m in med.items():
        print(f"{n:20s} {m['cpu_ms']:10.2f} {m['cpu_ms'] / ref - 1:+9.1%} {m['wall_ms']:10.2f} "
              f"{m['bytes_per_row']:9.2f} {m['files']:5.0f} {m['scan_s'] * 1e3:8.1f}")
    import _common as C

    C.save("crash_cost", {"rows_per_interval": a.rows_per_interval, "intervals": a.intervals,
                          "repeats": a.repeats, "baseline_rev": a.baseline_rev,
                          "median": med, "raw": raw})


if __name__ == "__main__":
    main()
