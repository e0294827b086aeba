"""The TUI's state, free of Textual: a sliding window of intervals -> frozen `Snapshot`s.

In: `Interval`s from any `Source` (live, replay, fake), one at a time, on the source worker
thread. Out: an immutable `Snapshot` per update holding small pyarrow tables (one row per
process / file / peer / device, already derived through `iolens.analysis.metrics`) that the
widgets render on the UI thread. Nothing here touches a widget, so it runs on any thread and
is tested without a terminal.

TUI-only derivations (per-op byte rates beside `metrics.rollup`, the process tree order,
sparkline series, the adapters for the optional `tcp` and `block` tables) live here rather
than in analysis/metrics.py.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iolens.analysis import metrics as M
from iolens.collector.capture import CaptureMeta
from iolens.collector.sources import Interval

#: per-op byte-rate columns added beside `metrics.rollup`'s columns: name -> ops
OP_RATE_COLS: dict[str, tuple[str, ...]] = {
    "read_bs": ("read",), "write_bs": ("write",), "recv_bs": ("recv",), "send_bs": ("send",),
}
FILE_GROUPS = ("path", "dir", "class")
#: columns looked for in a `block` / `tcp` table written by probes that may come later
BLOCK_KEY_COLS = ("device", "disk", "dev", "resource")
TCP_KEY_COLS = ("resource", "peer", "endpoint", "daddr")
SPARK_LEN = 60


@dataclass(frozen=True)
class ProcInfo:
    """What the `procs` table says about one pid (latest observation wins)."""

    pid: int
    ppid: int | None = None
    comm: str | None = None
    cmdline: str | None = None
    role: str | None = None
    rank: int | None = None

    @property
    def label(self) -> str:
        """Role shown after the name: 'dataloader', 'rank 3', 'trainer · rank 0'."""
        parts = [self.role] if self.role and self.role != "rank" else []
        if self.rank is not None:
            parts.append(f"rank {self.rank}")
        return " · ".join(parts)


@dataclass(frozen=True)
class ViewOptions:
    """Choices the UI makes that change what the worker derives."""

    file_group: str = "path"  # one of FILE_GROUPS


@dataclass(frozen=True)
class Snapshot:
    """Everything one frame shows; built off the UI thread, never mutated."""

    seq: int
    meta: CaptureMeta
    intervals_seen: int
    interval_s: float
    elapsed_s: float
    lost_events: int
    lost_total: int
    cpu_pct: float | None
    rate_window_s: float
    recent_io: pa.Table            # io rows the rate columns are computed from
    processes: pa.Table            # hot_table by pid (+ comm)
    files: pa.Table                # hot_table by the chosen file grouping (column `key`)
    peers: pa.Table                # hot_table of sockets by endpoint (+ retrans)
    devices: pa.Table | None       # None when no block data exists
    procs: dict[int, ProcInfo]
    spark_pids: np.ndarray         # pids of the rows of `spark`
    spark: np.ndarray              # bytes/s per pid per interval, oldest first
    window: dict[str, pa.Table]    # the sliding window, per table (for the rules)
    file_group: str = "path"
    has_tcp: bool = False
    position: tuple[int, int] | None = None   # replay only
    speed: float | None = None                # replay only
    paused: bool = False                      # the source is paused (replay)
    finished: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# --- derivations -------------------------------------------------------------------------

def hot_table(io: pa.Table, keys: Sequence[str], window_s: float) -> pa.Table:
    """`metrics.rollup(io, keys)` plus read/write/recv/send bytes per second.

    In: io rows; Out: one row per key with rollup's columns and OP_RATE_COLS (float, 0 when
    none), sorted by summed latency (the share of time blocked) descending.
    """
    base = M.rollup(io, keys, window_s)
    w = window_s if window_s > 0 else 1.0
    if base.num_rows == 0:
        for name in OP_RATE_COLS:
            base = base.append_column(name, pa.array([], pa.float64()))
        return base
    # One hash aggregation of op-masked byte columns, joined back on the keys. Acero joins
    # refuse list columns, so the latency histogram is set aside and re-attached by order.
    hist = base.column("lat_hist")
    base = base.drop_columns(["lat_hist"]).append_column(
        "_order", pa.array(np.arange(base.num_rows), pa.int64()))
    masked = io.select(list(keys))
    for name, ops in OP_RATE_COLS.items():
        hit = pc.is_in(io.column("op"), pa.array(list(ops)))
        masked = masked.append_column(name, pc.if_else(hit, io.column("bytes"), 0))
    per_op = masked.group_by(list(keys), use_threads=False).aggregate(
        [(name, "sum") for name in OP_RATE_COLS])
    per_op = per_op.rename_columns([c.removesuffix("_sum") for c in per_op.column_names])
    base = base.join(per_op, list(keys), join_type="left outer", use_threads=False)
    base = base.sort_by("_order").drop_columns(["_order"]).append_column("lat_hist", hist)
    for name in OP_RATE_COLS:
        i = base.column_names.index(name)
        vals = pc.divide(pc.cast(base.column(name).fill_null(0), pa.float64()), w)
        base = base.set_column(i, name, vals)
    return base


def last_by(t: pa.Table, key: str, cols: Sequence[str]) -> pa.Table:
    """The last value of each of `cols` per `key` (in row order)."""
    aggs = [(c, "last") for c in cols]
    out = t.select([key, *cols]).group_by(key, use_threads=False).aggregate(aggs)
    return out.rename_columns([c.removesuffix("_last") for c in out.column_names])


def process_table(io: pa.Table, window_s: float) -> pa.Table:
    """Hot table per pid, with the process's latest comm from the io rows."""
    hot = hot_table(io, ["pid"], window_s)
    if hot.num_rows == 0:
        return hot.append_column("comm", pa.array([], pa.string()))
    names = last_by(io, "pid", ["comm"])
    idx = pc.index_in(hot.column("pid"), value_set=names.column("pid"))
    return hot.append_column("comm", pc.take(names.column("comm"), idx))


def file_key(io: pa.Table, group: str) -> pa.Array | pa.ChunkedArray:
    """The grouping key of file rows: full path, its directory, or its file class."""
    if group == "dir":
        return pc.replace_substring_regex(io.column("resource").fill_null("?"),
                                          r"/[^/]*$", "/")
    if group == "class":
        return io.column("file_class").fill_null("other")
    return io.column("resource").fill_null("?")


def file_table(io: pa.Table, window_s: float, group: str = "path") -> pa.Table:
    """Hot table of file I/O (kind == file) keyed by `key` (path, dir/ or class)."""
    files = io.filter(pc.equal(io.column("kind"), "file"))
    files = files.append_column("key", file_key(files, group))
    return hot_table(files, ["key"], window_s)


def peer_table(io: pa.Table, window_s: float, tcp: pa.Table | None = None) -> pa.Table:
    """Hot table of socket I/O keyed by endpoint (`resource`), with `retrans` when a `tcp`
    table with a retransmits column exists (null otherwise)."""
    socks = io.filter(pc.equal(io.column("kind"), "socket"))
    socks = socks.append_column("key", socks.column("resource").fill_null("?"))
    hot = hot_table(socks, ["key"], window_s)
    retrans = _tcp_retrans(tcp)
    if retrans is None or hot.num_rows == 0:
        return hot.append_column("retrans", pa.nulls(hot.num_rows, pa.int64()))
    idx = pc.index_in(hot.column("key"), value_set=retrans.column("key"))
    return hot.append_column("retrans", pc.take(retrans.column("retrans"), idx).fill_null(0))


def _tcp_retrans(tcp: pa.Table | None) -> pa.Table | None:
    """Adapter for a future `tcp` table: summed retransmits per endpoint, or None."""
    if tcp is None or tcp.num_rows == 0:
        return None
    col = next((c for c in ("retransmits", "retrans") if c in tcp.column_names), None)
    key = next((c for c in TCP_KEY_COLS if c in tcp.column_names), None)
    if col is None or key is None:
        return None
    t = pa.table({"key": pc.cast(tcp.column(key), pa.string()).fill_null("?"),
                  "retrans": pc.cast(tcp.column(col), pa.int64()).fill_null(0)})
    return t.group_by("key", use_threads=False).aggregate([("retrans", "sum")]) \
        .rename_columns(["key", "retrans"])


def device_table(block: pa.Table | None, window_s: float) -> pa.Table | None:
    """Adapter for a future `block` table: per device ops/s, MB/s and latency, or None.

    Uses whichever of BLOCK_KEY_COLS names the device, `bytes`/`count` when present, and
    `lat_hist` (log2 ns buckets, like io) for percentiles.
    """
    if block is None:
        return None
    key = next((c for c in BLOCK_KEY_COLS if c in block.column_names), None)
    if key is None:
        return None
    cols: dict[str, Any] = {"key": pc.cast(block.column(key), pa.string()).fill_null("?")}
    n = block.num_rows
    for name in ("count", "bytes", "lat_sum_ns", "lat_max_ns", "errors"):
        cols[name] = (pc.cast(block.column(name), pa.int64()).fill_null(0)
                      if name in block.column_names else pa.array(np.zeros(n, np.int64)))
    cols["lat_hist"] = (block.column("lat_hist") if "lat_hist" in block.column_names
                        else pa.array([[]] * n, pa.list_(pa.int64())))
    if "ts" in block.column_names:
        cols["ts"] = block.column("ts")
        cols["interval_s"] = pa.array(np.full(n, window_s))
    return M.rollup(pa.table(cols), ["key"], window_s)


def spark_series(per_interval: Sequence[pa.Table], pids: np.ndarray,
                 length: int = SPARK_LEN) -> np.ndarray:
    """bytes/s per pid per interval: rows follow `pids`, columns the last `length` intervals
    (oldest first, zero-padded on the left).

    In: one small table (pid, bytes_s) per interval, oldest first.
    """
    out = np.zeros((len(pids), length))
    recent = list(per_interval)[-length:]
    if not len(pids) or not recent:
        return out
    offset = length - len(recent)
    pid_arr = pa.array(pids, pa.int32())
    for j, t in enumerate(recent):  # one vectorized scatter per interval (<= 60)
        if t.num_rows == 0:
            continue
        rows = pc.index_in(t.column("pid"), value_set=pid_arr)
        ok = np.asarray(rows.is_valid())
        idx = np.asarray(rows.fill_null(0))[ok]
        out[idx, offset + j] = np.asarray(t.column("bytes_s"))[ok]
    return out


def tree_order(pids: Sequence[int], procs: dict[int, ProcInfo],
               weight: dict[int, float]) -> list[tuple[int, int, bool]]:
    """Order `pids` as a process tree: (pid, depth, is_last_sibling), children under parents.

    Ancestors known from `procs` are added so the hierarchy shows. Siblings are ordered by
    the summed `weight` of their subtree (descending), then by their order in `pids`, so
    the hottest branch comes first. In: pids already sorted by the user's sort column.
    """
    rank = {p: i for i, p in enumerate(pids)}
    shown = set(pids)
    for p in list(pids):  # add known ancestors (bounded: a cycle in bad data stops here)
        q, hops = procs.get(p), 0
        while q and q.ppid and q.ppid in procs and q.ppid not in shown and hops < 64:
            shown.add(q.ppid)
            q, hops = procs.get(q.ppid), hops + 1
    children: dict[int | None, list[int]] = {}
    for p in shown:
        parent = procs[p].ppid if p in procs else None
        children.setdefault(parent if parent in shown and parent != p else None, []).append(p)
    total: dict[int, float] = {}

    def subtree(p: int, depth: int = 0) -> float:
        if p not in total:
            total[p] = 0.0  # guard against cycles
            total[p] = weight.get(p, 0.0) + sum(subtree(c, depth + 1)
                                                for c in children.get(p, []) if depth < 64)
        return total[p]

    def key(p: int) -> tuple[float, int]:
        return (-subtree(p), rank.get(p, len(rank) + p))

    out: list[tuple[int, int, bool]] = []
    roots = sorted(children.get(None, []), key=key)
    reachable = _reachable(roots, children)
    # Processes caught in a parent cycle (bad data) have no root; show them at the top level.
    roots += sorted((p for p in shown if p not in reachable), key=key)
    stack = [(p, 0, i == len(roots) - 1) for i, p in enumerate(roots)][::-1]
    seen: set[int] = set()
    while stack:
        p, depth, last = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        out.append((p, depth, last))
        kids = sorted(children.get(p, []), key=key)
        stack.extend([(c, depth + 1, i == len(kids) - 1) for i, c in enumerate(kids)][::-1])
    return out


def _reachable(roots: list[int], children: dict[int | None, list[int]]) -> set[int]:
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo.extend(children.get(p, []))
    return seen


# --- the sliding window --------------------------------------------------------------------

class Window:
    """A sliding window of the last `size` intervals and the derivations over it.

    Args:
        meta: the source's capture metadata (header, empty-state reasons, rules).
        size: intervals kept for verdicts and sparklines.
        rate_intervals: the most recent intervals the table rates are computed over.
    """

    def __init__(self, meta: CaptureMeta, size: int = 60, rate_intervals: int = 1) -> None:
        self.meta = meta
        self.size = size
        self.rate_intervals = max(1, rate_intervals)
        self.reset()

    def reset(self) -> None:
        """Forget every interval (after a seek)."""
        self.intervals: deque[Interval] = deque(maxlen=self.size)
        self.pid_bytes: deque[pa.Table] = deque(maxlen=self.size)
        self.procs: dict[int, ProcInfo] = {}
        self.seen = 0
        self.lost_total = 0
        self.first_ns: int | None = None

    def add(self, iv: Interval) -> None:
        """Take one interval: keep it, fold its procs rows, pre-sum its bytes per pid."""
        self.intervals.append(iv)
        self.seen += 1
        self.first_ns = iv.start_ns if self.first_ns is None else self.first_ns
        self.lost_total += int(iv.health.get("lost_events") or 0)
        self._fold_procs(iv.table("procs"))
        io = iv.table("io")
        data = io.filter(pc.is_in(io.column("op"), pa.array(list(M.DATA_OPS))))
        per = data.group_by("pid", use_threads=False).aggregate([("bytes", "sum")])
        secs = iv.interval_s or 1.0
        self.pid_bytes.append(pa.table({
            "pid": per.column("pid"),
            "bytes_s": pc.divide(pc.cast(per.column("bytes_sum"), pa.float64()), secs)}))

    def _fold_procs(self, procs: pa.Table) -> None:
        # One row per process observation (not per I/O op), so a loop is fine here.
        if procs.num_rows == 0:
            return
        cols = ["pid", "ppid", "comm", "cmdline", "role", "rank"]
        for r in procs.select(cols).to_pylist():
            old = self.procs.get(r["pid"])
            merged = {k: (r[k] if r[k] is not None else getattr(old, k, None)) for k in cols}
            self.procs[r["pid"]] = ProcInfo(**merged)

    def table(self, name: str, last: int | None = None) -> pa.Table | None:
        """`name`'s rows over the window (or its `last` intervals); None if never seen."""
        ivs = list(self.intervals)[-last:] if last else list(self.intervals)
        parts = [iv.tables[name] for iv in ivs if iv.tables.get(name) is not None]
        if not parts:
            return None
        return pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 \
            else parts[0]

    def snapshot(self, seq: int, opts: ViewOptions | None = None, **state: Any) -> Snapshot:
        """Derive a frame from the window. `state`: position/speed/paused/finished."""
        opts = opts or ViewOptions()
        last = list(self.intervals)[-self.rate_intervals:]
        rate_s = sum(iv.interval_s for iv in last) or 1.0
        io = self.table("io", self.rate_intervals)
        if io is None:
            from iolens.collector import schema as S
            io = S.empty_table("io")
        procs_t = process_table(io, rate_s)
        pids = np.asarray(procs_t.column("pid"), dtype=np.int64)
        tcp = self.table("tcp", self.rate_intervals)
        newest = self.intervals[-1] if self.intervals else None
        return Snapshot(
            seq=seq, meta=self.meta, intervals_seen=self.seen,
            interval_s=newest.interval_s if newest else self.meta.interval_s,
            elapsed_s=((newest.end_ns - self.first_ns) / 1e9
                       if newest and self.first_ns is not None else 0.0),
            lost_events=int(newest.health.get("lost_events") or 0) if newest else 0,
            lost_total=self.lost_total, cpu_pct=_cpu_pct(newest), rate_window_s=rate_s,
            recent_io=io, processes=procs_t, files=file_table(io, rate_s, opts.file_group),
            peers=peer_table(io, rate_s, tcp),
            devices=device_table(self.table("block", self.rate_intervals), rate_s),
            procs=dict(self.procs), spark_pids=pids,
            spark=spark_series(self.pid_bytes, pids),
            window={n: t for n in _table_names(self.intervals)
                    if (t := self.table(n)) is not None},
            file_group=opts.file_group, has_tcp=tcp is not None, **state)


def _table_names(intervals: Sequence[Interval]) -> list[str]:
    names: list[str] = []
    for iv in intervals:
        names.extend(n for n in iv.tables if n not in names)
    return names


def _cpu_pct(iv: Interval | None) -> float | None:
    if iv is None or "collector_cpu_s" not in iv.health:
        return None
    secs = iv.interval_s or 1.0
    return 100.0 * float(iv.health.get("collector_cpu_s") or 0.0) / secs


def empty_snapshot(meta: CaptureMeta) -> Snapshot:
    """The frame shown before any data arrived."""
    return Window(meta).snapshot(0)


def block_reason(meta: CaptureMeta) -> str:
    """Why there is no block-layer data, from `meta.probes_skipped`."""
    for name, why in (meta.probes_skipped or {}).items():
        if "block" in name:
            return f"{name}: {why}"
    return "no block probe attached" if meta.probes_attached else "no probe information"
