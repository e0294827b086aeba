"""Child process of test_crash_recovery.py: writes intervals until killed.

usage: python -m tests.reliability._crash_writer DIR ROWS ROTATE_S FSYNC [LAYOUT]

Interval i has `ROWS` io rows and one health row, all stamped ts = T0 + i s, so the reader can
check that every interval is whole and present once. After `write_tables` returns (the
interval is committed) the child prints i: the parent knows which intervals must survive.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa

from iolens.collector import schema as S
from iolens.collector.capture import CaptureMeta, CaptureWriter
from tests import factories as F


def _at(table: pa.Table, ts: int) -> pa.Table:
    """`table` with every row stamped `ts`."""
    i = table.schema.get_field_index("ts")
    return table.set_column(i, "ts", pa.array([ts] * table.num_rows, pa.int64()).cast(S.TS))


def main() -> None:
    out, rows, rotate_s, fsync = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), \
        sys.argv[4]
    layout = sys.argv[5] if len(sys.argv) > 5 else "flat"
    meta = CaptureMeta(host=F.HOST)
    w = CaptureWriter(out, meta, rotate_s=rotate_s, fsync=fsync, layout=layout,
                      must_be_new=layout == "flat", background=True)  # as `iolens record`
    base = F.interval([F.io_row(pid=100 + k, resource=f"/data/file-{k}")
                       for k in range(rows)]).tables
    i = 0
    while True:
        ts = F.T0 + i * 10**9
        meta.intervals += 1
        w.write_tables({name: _at(t, ts) for name, t in base.items()}, ts)
        print(i, flush=True)
        i += 1


if __name__ == "__main__":
    main()
