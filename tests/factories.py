"""Synthetic capture data for pure tests: tables of the real schema with chosen values.

Golden numbers in tests come from the arguments given here (the tests say which).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa

from iolens.collector import schema as S
from iolens.collector.capture import CaptureMeta, CaptureWriter
from iolens.collector.sources import Interval

T0 = 1_764_000_000_000_000_000  # a fixed wall clock (ns) so outputs are reproducible
HOST = "testhost"


def log2_bucket(v: int) -> int:
    return max(0, min(v.bit_length() - 1, S.LAT_BUCKETS - 1)) if v > 0 else 0


def io_row(pid: int = 100, op: str = "read", resource: str = "/data/a", count: int = 1,
           nbytes: int = 4096, lat_ns: int = 10_000, kind: str | None = None,
           comm: str = "python", errors: int = 0, ts: int = T0, interval_s: float = 1.0,
           size: int | None = None, random_ops: int = 0, syscall: str | None = None,
           host: str = HOST, file_class: str | None = None, tid: int | None = None) -> dict:
    """One io row: `count` ops of `lat_ns` each moving `nbytes` in total."""
    hist = [0] * S.LAT_BUCKETS
    hist[log2_bucket(lat_ns)] = count
    per = size if size is not None else (nbytes // count if count else 0)
    sh = [0] * S.SIZE_BUCKETS
    if op in ("read", "write", "send", "recv"):
        sh[min(max(per.bit_length() - 1, 0), S.SIZE_BUCKETS - 1)] = count
    if kind is None:
        kind = "socket" if op in ("send", "recv", "connect", "accept") else "file"
    return dict(ts=ts, interval_s=interval_s, host=host, pid=pid, tid=tid, comm=comm, op=op,
                kind=kind, resource=resource, count=count, bytes=nbytes, errors=errors,
                lat_sum_ns=lat_ns * count, lat_max_ns=lat_ns, lat_hist=hist,
                syscall=syscall or {"send": "sendto", "recv": "recvfrom"}.get(op, op),
                fd=3, size_hist=sh, random_ops=random_ops, file_class=file_class,
                cgroup_id=1)


def io_table(rows: Iterable[dict]) -> pa.Table:
    rows = list(rows)
    if not rows:
        return S.empty_table("io")
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    cols["ts"] = pa.array(cols["ts"], pa.int64()).cast(S.TS)
    return S.to_table("io", cols)


def proc_table(procs: Iterable[dict], ts: int = T0) -> pa.Table:
    """procs: dicts with pid, ppid, comm, cmdline, role (others optional)."""
    procs = list(procs)
    cols: dict[str, list] = {f.name: [] for f in S.PROCS}
    for p in procs:
        for f in S.PROCS:
            v = p.get(f.name)
            if f.name == "ts":
                v = ts
            elif f.name == "host":
                v = p.get("host", HOST)
            elif f.name == "start_time" and v is None:
                v = ts
            cols[f.name].append(v)
    cols["ts"] = pa.array(cols["ts"], pa.int64()).cast(S.TS)
    cols["start_time"] = pa.array(cols["start_time"], pa.int64()).cast(S.TS)
    cols["exit_time"] = pa.array(cols["exit_time"], pa.int64()).cast(S.TS)
    return S.to_table("procs", cols)


def health_row(ts: int = T0, interval_s: float = 1.0, lost: int = 0, rows: int = 0) -> dict:
    return dict(ts=ts, interval_s=interval_s, host=HOST, io_rows=rows, event_rows=0,
                lost_events=lost, agg_overflow=0, fd_overflow=0, drain_ms=0.5,
                collector_cpu_s=0.01, collector_rss_bytes=100 << 20, keys=rows)


def health_table(rows: Iterable[dict]) -> pa.Table:
    rows = list(rows)
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    cols["ts"] = pa.array(cols["ts"], pa.int64()).cast(S.TS)
    return S.to_table("health", cols)


def interval(rows: list[dict], procs: list[dict] | None = None, ts: int = T0,
             interval_s: float = 1.0, lost: int = 0) -> Interval:
    """An Interval with the given io rows (their ts forced to `ts`)."""
    rows = [{**r, "ts": ts, "interval_s": interval_s} for r in rows]
    tables = {"io": io_table(rows),
              "health": health_table([health_row(ts, interval_s, lost, len(rows))])}
    if procs:
        tables["procs"] = proc_table(procs, ts)
    h = health_row(ts, interval_s, lost, len(rows))
    h.pop("ts")
    return Interval(ts, ts + int(interval_s * 1e9), tables, h)


def write_capture(path: Path, intervals: list[Interval], command: list[str] | None = None,
                  complete: bool = True, **meta_kw) -> Path:
    """Write intervals as a real capture directory (via the real CaptureWriter)."""
    meta = CaptureMeta(iolens_version="test", host=HOST, command=command,
                       started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 / 1e9)),
                       probes_attached=["syscalls"], **meta_kw)
    w = CaptureWriter(path, meta, rotate_s=1e9)
    for iv in intervals:
        w.write_tables(iv.tables, iv.start_ns)
    w.close(complete=complete)
    return path


def crash(w: CaptureWriter) -> None:
    """Leave a writer the way SIGKILL does: its files closed by the kernel as they are (the
    open segment's streams and commit log unfinished, its lock released), nothing compacted."""
    for log in w._logs.values():
        log.fh.close()
    if w._commit is not None:
        w._commit.close()
    w._logs.clear()
    w._commit = None
    w.closed = True
