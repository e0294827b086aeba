"""Synthetic captures for the export tests (real Parquet files through the real writer).

Golden numbers: every value asserted in tests/export comes from the constants here.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from iolens.collector import schema as S
from iolens.collector.capture import Capture, read_capture
from iolens.collector.sources import Interval
from tests import factories as F

PID, TID = 4242, 4245            # the trainer and its writer thread
LOADER = 4300                    # a dataloader worker
FSYNC_LAT_NS = 250_000_000       # the slow fsync: 250 ms ...
FSYNC_END_NS = F.T0 + 1_700_000_000  # ... completing 1.7 s into the capture
CKPT = "/ckpt/step100.pt"
PROCS = [dict(pid=PID, ppid=1, comm="python", cmdline="python train.py", role="trainer",
              rank=0),
         dict(pid=LOADER, ppid=PID, comm="pt_data_worker", role="dataloader", rank=0)]


def event_table(rows: list[dict]) -> pa.Table:
    """Rows of the events schema; missing fields are null."""
    cols = {f.name: [r.get(f.name) for r in rows] for f in S.EVENTS}
    cols["ts"] = pa.array(cols["ts"], pa.int64()).cast(S.TS)
    return S.to_table("events", cols)


def slow_event(ts: int, lat_ns: int, op: str = "fsync", pid: int = PID, tid: int | None = TID,
               resource: str = CKPT, nbytes: int | None = None, ret: int = 0) -> dict:
    return dict(ts=ts, host=F.HOST, pid=pid, tid=tid, comm="ckpt-writer", type="slow", op=op,
                syscall=op, kind="file", resource=resource, fd=7, ret=ret, lat_ns=lat_ns,
                bytes=nbytes)


def intervals() -> list[Interval]:
    """Three 1 s intervals: reads by the loader, a checkpoint write + slow fsync, idle."""
    i0 = F.interval([F.io_row(pid=LOADER, comm="pt_data_worker", op="read",
                              resource="/data/shard-0", count=64, nbytes=64 << 20,
                              lat_ns=3_000_000, file_class="dataset"),
                     F.io_row(pid=PID, op="recv", resource="tcp:10.0.0.2:29500", count=10,
                              nbytes=10 << 10, lat_ns=50_000)],
                    procs=PROCS, ts=F.T0, lost=0)
    i1 = F.interval([F.io_row(pid=PID, op="write", resource=CKPT, count=16, nbytes=256 << 20,
                              lat_ns=20_000_000, file_class="checkpoint", tid=TID),
                     F.io_row(pid=PID, op="fsync", resource=CKPT, count=1, nbytes=0,
                              lat_ns=FSYNC_LAT_NS, file_class="checkpoint", tid=TID)],
                    ts=F.T0 + 1_000_000_000, lost=3)
    i1.tables["events"] = event_table([
        slow_event(FSYNC_END_NS, FSYNC_LAT_NS),
        slow_event(F.T0 + 1_300_000_000, 30_000_000, op="write", nbytes=16 << 20),
        dict(ts=F.T0 + 1_100_000_000, host=F.HOST, pid=PID, tid=PID, comm="python",
             type="open", op="open", resource=CKPT, fd=7, ret=7),
    ])
    i2 = F.interval([F.io_row(pid=LOADER, comm="pt_data_worker", op="stat",
                              resource="/data/shard-1", count=2, nbytes=0, lat_ns=1_000)],
                    ts=F.T0 + 2_000_000_000)
    return [i0, i1, i2]


def capture(tmp_path: Path, ivs: list[Interval] | None = None) -> Capture:
    """Write the intervals as a real capture and read it back."""
    path = F.write_capture(tmp_path / "cap", ivs if ivs is not None else intervals(),
                           command=["python", "train.py"])
    return read_capture(path)


def table_rows(name: str, rows: list[dict]) -> pa.Table:
    """Rows of any schema table (block, tcp, gpu, ...); missing fields are null."""
    cols = {f.name: [r.get(f.name) for r in rows] for f in S.TABLES[name]}
    cols["ts"] = pa.array(cols["ts"], pa.int64()).cast(S.TS)
    return S.to_table(name, cols)
