"""What each table shows: column specs and the rows of one frame, free of Textual.

In: a `Snapshot` (or one of its hot tables) plus the user's sort column, direction, text
filter and tree mode. Out: `Col` specs and at most `limit` row dicts ready to format, each
with `_key` (row identity that survives refreshes) and, for process rows, `_depth`/`_last`
for the tree. Sorting and filtering run in pyarrow on the derived tables (one row per
process/file/peer), so only the rows on screen reach Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iolens.tui import format as fmt
from iolens.tui.model import ProcInfo, Snapshot, tree_order

ROW_LIMIT = 200


@dataclass(frozen=True)
class Col:
    """One table column: `key` is both the cell's field in a row dict and the sort column."""

    key: str
    label: str
    width: int
    fmt: Callable[[Any], str]
    wide: int | None = None        # width in wide terminals; None = same
    wide_only: bool = False        # shown only when the terminal is wide
    narrow_only: bool = False      # shown only when it is not
    numeric: bool = True


@dataclass(frozen=True)
class View:
    """One hot table: its columns, default sort and the fields the text filter searches."""

    name: str
    cols: tuple[Col, ...]
    sort: str
    filter_fields: tuple[str, ...]

    def columns(self, wide: bool) -> list[Col]:
        return [c for c in self.cols
                if not (c.wide_only and not wide) and not (c.narrow_only and wide)]

    def sortable(self) -> list[str]:
        return [c.key for c in self.cols]


def _s(v: Any) -> str:
    return "" if v is None else str(v)


PROCESSES = View("processes", (
    Col("pid", "PID", 6, fmt.count, 7, numeric=True),
    Col("name", "PROCESS", 20, _s, 34, numeric=False),
    Col("read_bs", "READ", 6, fmt.mbps, 8),
    Col("write_bs", "WRITE", 6, fmt.mbps, 8),
    Col("net_bs", "NET", 6, fmt.mbps, narrow_only=True),
    Col("recv_bs", "NET IN", 7, fmt.mbps, wide_only=True),
    Col("send_bs", "NET OUT", 7, fmt.mbps, wide_only=True),
    Col("ops_s", "OPS/s", 7, fmt.rate, wide_only=True),
    Col("io_frac", "IO%", 5, fmt.pct),
    Col("lat_p50_ns", "P50", 6, fmt.latency, wide_only=True),
    Col("lat_p99_ns", "P99", 6, fmt.latency),
    Col("spark", "LAST 60s", 8, _s, 30, numeric=False),
), sort="io_frac", filter_fields=("comm", "pid_text", "role"))

FILES = View("files", (
    Col("key", "FILE", 33, _s, 70, numeric=False),
    Col("read_bs", "READ", 6, fmt.mbps, 8),
    Col("write_bs", "WRITE", 6, fmt.mbps, 8),
    Col("ops_s", "OPS/s", 7, fmt.rate),
    Col("io_frac", "IO%", 5, fmt.pct),
    Col("small_frac", "SMALL%", 6, fmt.pct, wide_only=True),
    Col("lat_p50_ns", "P50", 6, fmt.latency, wide_only=True),
    Col("lat_p99_ns", "P99", 6, fmt.latency),
), sort="io_frac", filter_fields=("key",))

PEERS = View("peers", (
    Col("key", "ENDPOINT", 26, _s, 50, numeric=False),
    Col("recv_bs", "IN", 6, fmt.mbps, 8),
    Col("send_bs", "OUT", 6, fmt.mbps, 8),
    Col("ops_s", "OPS/s", 7, fmt.rate),
    Col("lat_p50_ns", "P50", 6, fmt.latency, wide_only=True),
    Col("lat_p99_ns", "P99", 6, fmt.latency),
    Col("retrans", "RETRANS", 7, fmt.count),
    Col("rtt_us", "RTT", 6, lambda us: fmt.latency(us * 1e3 if us else us), wide_only=True),
), sort="bytes_s", filter_fields=("key",))

DEVICES = View("devices", (
    Col("key", "DEVICE", 16, _s, 30, numeric=False),
    Col("ops_s", "OPS/s", 7, fmt.rate),
    Col("read_bs", "READ", 7, fmt.mbps),
    Col("write_bs", "WRITE", 7, fmt.mbps),
    Col("io_frac", "BUSY%", 6, fmt.pct, wide_only=True),
    Col("lat_p50_ns", "P50", 6, fmt.latency),
    Col("lat_p99_ns", "P99", 6, fmt.latency),
    Col("lat_max_ns", "MAX", 6, fmt.latency),
), sort="lat_p99_ns", filter_fields=("key",))

VIEWS = {v.name: v for v in (PROCESSES, FILES, PEERS, DEVICES)}

#: sort columns that are not plain table columns: what they sort by
SORT_ALIASES = {"name": "comm", "spark": "bytes_s", "net_bs": "net_bs"}


def _with_net(t: pa.Table) -> pa.Table:
    if "net_bs" in t.column_names or "recv_bs" not in t.column_names:
        return t
    return t.append_column("net_bs", pc.add(t.column("recv_bs"), t.column("send_bs")))


def select(t: pa.Table, sort: str, descending: bool, text: str,
           fields: Sequence[str], limit: int = ROW_LIMIT) -> pa.Table:
    """Filter `t` by case-insensitive substring `text` on `fields`, sort, keep `limit` rows.

    Sorting is stable with the table's own order (hottest first) breaking ties.
    """
    t = _with_net(t)
    if text:
        masks = [pc.match_substring(pc.cast(t.column(f), pa.string()).fill_null(""), text,
                                    ignore_case=True) for f in fields if f in t.column_names]
        if masks:
            mask = masks[0]
            for m in masks[1:]:
                mask = pc.or_(mask, m)
            t = t.filter(mask)
    col = SORT_ALIASES.get(sort, sort)
    if col in t.column_names and t.num_rows:
        t = t.append_column("_o", pa.array(np.arange(t.num_rows), pa.int64()))
        order = "descending" if descending else "ascending"
        t = t.sort_by([(col, order), ("_o", "ascending")]).drop_columns(["_o"])
    return t.slice(0, limit)


def process_rows(snap: Snapshot, sort: str, descending: bool, text: str = "",
                 tree: bool = True, limit: int = ROW_LIMIT) -> tuple[list[dict], int]:
    """Rows of the process table and the number of processes before the limit.

    In tree mode children follow their parent (ancestors from `procs` are added, with no
    numbers, so the hierarchy reads); siblings keep the chosen sort.
    """
    t = snap.processes
    roles = [snap.procs.get(p, ProcInfo(p)).label for p in t.column("pid").to_pylist()] \
        if t.num_rows <= 5 * limit else None
    t = t.append_column("pid_text", pc.cast(t.column("pid"), pa.string()))
    if roles is not None:
        t = t.append_column("role", pa.array(roles, pa.string()))
    total = t.num_rows
    t = select(t, sort, descending, text, PROCESSES.filter_fields, limit)
    rows = {r["pid"]: r for r in t.drop_columns(["lat_hist"]).to_pylist()}
    spark_at = {int(p): i for i, p in enumerate(snap.spark_pids)}
    if tree:
        col = SORT_ALIASES.get(sort, sort)
        weight = {p: float(r.get(col) or 0) if isinstance(r.get(col), (int, float)) else 0.0
                  for p, r in rows.items()}
        if not descending:
            weight = {p: -w for p, w in weight.items()}
        order = tree_order(list(rows), snap.procs, weight) if not text else \
            [(p, 0, True) for p in rows]
    else:
        order = [(p, 0, True) for p in rows]
    out = []
    for pid, depth, last in order:
        info = snap.procs.get(pid, ProcInfo(pid))
        r = dict(rows.get(pid) or {"pid": pid, "comm": info.comm, "_ancestor": True})
        label = info.label
        name = r.get("comm") or info.comm or "?"
        prefix = ("  " * (depth - 1) + ("└─" if last else "├─")) if depth else ""
        r["name"] = f"{prefix}{name}" + (f" [{label}]" if label else "")
        # narrow terminals: the role says more than a comm like "python"
        r["name_short"] = f"{prefix}{label}" if label else r["name"]
        series = snap.spark[spark_at[pid]] if pid in spark_at else []
        r["spark"] = series
        r["_key"] = str(pid)
        r["_depth"] = depth
        out.append(r)
        if pid in snap.ipc and not r.get("_ancestor"):
            out.append(ipc_row(pid, snap.ipc[pid], depth))
    return out, total


def ipc_row(pid: int, ipc: dict[str, float], depth: int) -> dict:
    """The DataLoader-IPC line shown under a trainer: objects/s, per batch, IPC time share
    (not a process: counted as an ancestor row, drilling into it drills into the trainer)."""
    prefix = "  " * depth + "\u2504 "
    text = (f"{prefix}loader IPC {fmt.rate(ipc['objects_s'])} obj/s "
            f"{ipc['objects_per_batch']:.0f}/batch IPC {fmt.pct(ipc['ipc_share'])}%")
    return {"pid": pid, "name": text, "name_short": text, "ops_s": ipc["objects_s"],
            "spark": [], "_key": f"ipc:{pid}", "_depth": depth + 1, "_ancestor": True}


def table_rows(t: pa.Table, view: View, sort: str, descending: bool, text: str = "",
               limit: int = ROW_LIMIT) -> tuple[list[dict], int]:
    """Rows of a files/peers/devices table and the row count before the limit."""
    total = t.num_rows
    t = select(t, sort, descending, text, view.filter_fields, limit)
    keep = [c for c in t.column_names if c != "lat_hist"]
    rows = t.select(keep).to_pylist()
    for r in rows:
        r["_key"] = str(r.get("key"))
    return rows, total


def hist_of(t: pa.Table, key_col: str, key: Any) -> list[int]:
    """The merged latency histogram of the row whose `key_col` equals `key` ([] if none)."""
    if t.num_rows == 0 or key_col not in t.column_names:
        return []
    hit = t.filter(pc.equal(t.column(key_col), pa.scalar(key, t.schema.field(key_col).type)))
    return hit.column("lat_hist")[0].as_py() if hit.num_rows else []
