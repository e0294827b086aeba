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

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iolens.analysis import metrics as M
from iolens.collector.schema import LAT_BUCKETS, SIZE_BUCKETS
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
    window_s: float                # seconds the window covers
    file_group: str = "path"
    has_tcp: bool = False
    position: tuple[int, int] | None = None   # replay only
    speed: float | None = None                # replay only
    paused: bool = False                      # the source is paused (replay)
    finished: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    #: trainer pid -> its DataLoader IPC over the rate window (objects_s, ipc_share,
    #: objects_per_batch); shown as its own line under the trainer (issue 19)
    ipc: dict[int, dict[str, float]] = field(default_factory=dict)


# --- derivations -------------------------------------------------------------------------

def hist_matrix(col: pa.ChunkedArray | pa.Array, nbuckets: int) -> np.ndarray:
    """Same result as `metrics.hist_matrix`, faster for the TUI's per-second refresh.

    Each (row, bucket) occurs once in a list column, so values are placed by plain fancy
    assignment; only values past the last bucket (rare) need the accumulating path.
    """
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    n = len(col)
    out = np.zeros((n, nbuckets), dtype=np.int64)
    if n == 0:
        return out
    if pa.types.is_fixed_size_list(col.type):
        col = col.cast(pa.list_(col.type.value_type))
    col = col.fill_null(pa.scalar([], type=col.type)) if col.null_count else col
    offsets = np.asarray(col.offsets, dtype=np.int64)
    values = np.asarray(col.flatten().fill_null(0), dtype=np.int64)
    lengths = np.diff(offsets)
    if (lengths == lengths[0]).all():  # the usual case: every list the same length
        width = int(lengths[0])
        mat = values.reshape(n, width) if width else np.zeros((n, 0), np.int64)
        out[:, :min(width, nbuckets)] = mat[:, :nbuckets]
        if width > nbuckets:
            out[:, -1] += mat[:, nbuckets:].sum(axis=1)
        return out
    rows = np.repeat(np.arange(n), lengths)
    idx = np.arange(len(values)) - np.repeat(offsets[:-1] - offsets[0], lengths)
    keep = idx < nbuckets
    out[rows[keep], idx[keep]] = values[keep]
    if not keep.all():  # "and above": fold into the last bucket
        np.add.at(out, (rows[~keep], np.full(int((~keep).sum()), nbuckets - 1)),
                  values[~keep])
    return out


@dataclass(frozen=True)
class Prepared:
    """io rows with their histograms as matrices and counters as numpy arrays, computed
    once per frame and shared by the process, file and peer roll-ups."""

    io: pa.Table
    lat: np.ndarray
    size: np.ndarray
    nums: dict[str, np.ndarray]
    summed: np.ndarray  # [lat | size | SUMMED columns], summed per group in one pass


_SUMS = ("count", "bytes", "errors", "lat_sum_ns", "random_ops")
_SUMMED = (*_SUMS, *OP_RATE_COLS)


def prepare(io: pa.Table) -> Prepared:
    """In: io rows. Out: `Prepared` (numbers as int64 arrays, nulls as 0)."""
    nums = {}
    for name in (*_SUMS, "lat_max_ns"):
        col = io.column(name) if name in io.column_names else None
        nums[name] = (np.asarray(col.fill_null(0), dtype=np.int64) if col is not None
                      else np.zeros(io.num_rows, np.int64))
    op = io.column("op")
    for name, ops in OP_RATE_COLS.items():
        hit = np.asarray(pc.is_in(op, pa.array(list(ops))).fill_null(False))
        nums[name] = np.where(hit, nums["bytes"], 0)
    size = (hist_matrix(io.column("size_hist"), SIZE_BUCKETS)
            if "size_hist" in io.column_names else np.zeros((io.num_rows, SIZE_BUCKETS),
                                                           np.int64))
    lat = hist_matrix(io.column("lat_hist"), LAT_BUCKETS)
    summed = np.hstack([lat, size, np.stack([nums[c] for c in _SUMMED], axis=1)])
    return Prepared(io, lat, size, nums, summed)


def group_rollup(p: Prepared, key: pa.Array | pa.ChunkedArray, window_s: float,
                 mask: np.ndarray | None = None, key_name: str = "key") -> pa.Table:
    """`metrics.rollup` over one key column (same columns and formulas, checked equal in
    tests) plus read/write/recv/send bytes per second, on prepared rows.

    In: `key` aligned with `p.io`, an optional row mask. Out: one row per key value,
    sorted by summed latency descending (ties: key order of first appearance).
    """
    if isinstance(key, pa.ChunkedArray):
        key = key.combine_chunks()
    sel = np.arange(len(key)) if mask is None else np.nonzero(mask)[0]
    key = key.take(pa.array(sel)) if mask is not None else key
    if len(sel) == 0:
        return _empty_hot(key_name, key.type)
    enc = pc.dictionary_encode(key)
    gidx = np.asarray(enc.indices.fill_null(len(enc.dictionary)), dtype=np.int64)
    keys = enc.dictionary
    if enc.indices.null_count:  # a null key is its own group, as in rollup
        keys = pa.concat_arrays([keys, pa.nulls(1, keys.type)])
    n = len(keys)
    order = np.argsort(gidx, kind="stable")
    starts = np.searchsorted(gidx[order], np.arange(n))

    rows = sel[order]
    total = np.add.reduceat(p.summed[rows], starts, axis=0)
    w = window_s if window_s > 0 else 1.0
    lat, size = total[:, :LAT_BUCKETS], total[:, LAT_BUCKETS:LAT_BUCKETS + SIZE_BUCKETS]
    sums = {name: total[:, LAT_BUCKETS + SIZE_BUCKETS + i] for i, name in enumerate(_SUMMED)}
    lat_max = np.maximum.reduceat(p.nums["lat_max_ns"][sel][order], starts)
    sized = size.sum(axis=1)
    small = size[:, :14].sum(axis=1)  # buckets below 2^14 = 16 KiB, as metrics.rollup
    cols: dict[str, Any] = {
        key_name: keys, "count": sums["count"], "bytes": sums["bytes"],
        "errors": sums["errors"], "lat_sum_ns": sums["lat_sum_ns"], "lat_max_ns": lat_max,
        "lat_p50_ns": M.hist_quantiles(lat, 0.5), "lat_p99_ns": M.hist_quantiles(lat, 0.99),
        "ops_s": sums["count"] / w, "bytes_s": sums["bytes"] / w,
        "io_frac": sums["lat_sum_ns"] / (w * 1e9),
        "small_frac": np.where(sized > 0, small / np.maximum(sized, 1), np.nan),
        "random_ops": sums["random_ops"],
    }
    for name in OP_RATE_COLS:
        cols[name] = sums[name] / w
    cols["lat_hist"] = pa.FixedSizeListArray.from_arrays(
        pa.array(np.ascontiguousarray(lat).ravel()), LAT_BUCKETS)
    out = pa.table(cols)
    rank = np.lexsort((np.arange(n), -sums["lat_sum_ns"]))
    return out.take(pa.array(rank))


def _empty_hot(key_name: str, key_type: pa.DataType) -> pa.Table:
    ints = ("count", "bytes", "errors", "lat_sum_ns", "lat_max_ns", "random_ops")
    floats = ("lat_p50_ns", "lat_p99_ns", "ops_s", "bytes_s", "io_frac", "small_frac",
              *OP_RATE_COLS)
    fields = [pa.field(key_name, key_type)]
    fields += [pa.field(n, pa.int64()) for n in ints]
    fields += [pa.field(n, pa.float64()) for n in floats]
    fields.append(pa.field("lat_hist", pa.list_(pa.int64(), LAT_BUCKETS)))
    return pa.schema(fields).empty_table()


def hot_table(io: pa.Table, keys: Sequence[str], window_s: float) -> pa.Table:
    """Roll-up of `io` by one key column with per-op byte rates (see `group_rollup`)."""
    (key,) = keys
    return group_rollup(prepare(io), io.column(key), window_s, key_name=key)


def last_by(t: pa.Table, key: str, cols: Sequence[str]) -> pa.Table:
    """The last value of each of `cols` per `key` (in row order)."""
    aggs = [(c, "last") for c in cols]
    out = t.select([key, *cols]).group_by(key, use_threads=False).aggregate(aggs)
    return out.rename_columns([c.removesuffix("_last") for c in out.column_names])


def process_table(io: pa.Table, window_s: float, prep: Prepared | None = None) -> pa.Table:
    """Hot table per pid, with the process's latest comm from the io rows."""
    prep = prep or prepare(io)
    hot = group_rollup(prep, io.column("pid"), window_s, key_name="pid")
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


def _kind_mask(io: pa.Table, kind: str) -> np.ndarray:
    return np.asarray(pc.equal(io.column("kind"), kind).fill_null(False))


def file_table(io: pa.Table, window_s: float, group: str = "path",
               prep: Prepared | None = None) -> pa.Table:
    """Hot table of file I/O (kind == file) keyed by `key` (path, dir/ or class)."""
    mask = _kind_mask(io, "file")
    if group != "path":  # the regex only runs on file rows
        files = io.filter(pa.array(mask))
        return group_rollup(prepare(files) if prep is None else _subset(prep, mask),
                            file_key(files, group), window_s)
    return group_rollup(prep or prepare(io), file_key(io, group), window_s, mask)


def _subset(p: Prepared, mask: np.ndarray) -> Prepared:
    return Prepared(p.io.filter(pa.array(mask)), p.lat[mask], p.size[mask],
                    {k: v[mask] for k, v in p.nums.items()}, p.summed[mask])


def peer_table(io: pa.Table, window_s: float, tcp: pa.Table | None = None,
               prep: Prepared | None = None) -> pa.Table:
    """Hot table of socket I/O keyed by endpoint (`resource`), with `retrans` and `rtt_us`
    from the `tcp` table when it exists (null otherwise: the view shows '-')."""
    hot = group_rollup(prep or prepare(io), io.column("resource").fill_null("?"), window_s,
                       _kind_mask(io, "socket"))
    retrans = _tcp_retrans(tcp)
    if retrans is None or hot.num_rows == 0:
        return hot.append_column("retrans", pa.nulls(hot.num_rows, pa.int64())) \
            .append_column("rtt_us", pa.nulls(hot.num_rows, pa.float64()))
    idx = pc.index_in(hot.column("key"), value_set=retrans.column("key"))
    hot = hot.append_column("retrans", pc.take(retrans.column("retrans"), idx).fill_null(0))
    return hot.append_column("rtt_us", pc.take(retrans.column("rtt_us"), idx))


def _tcp_retrans(tcp: pa.Table | None) -> pa.Table | None:
    """From the `tcp` table: summed retransmits and mean smoothed RTT (µs) per endpoint,
    or None when there is no such table."""
    if tcp is None or tcp.num_rows == 0:
        return None
    col = next((c for c in ("retransmits", "retrans") if c in tcp.column_names), None)
    key = next((c for c in TCP_KEY_COLS if c in tcp.column_names), None)
    if col is None or key is None:
        return None
    rtt = (pc.cast(tcp.column("rtt_us"), pa.float64()) if "rtt_us" in tcp.column_names
           else pa.nulls(tcp.num_rows, pa.float64()))
    t = pa.table({"key": pc.cast(tcp.column(key), pa.string()).fill_null("?"),
                  "retrans": pc.cast(tcp.column(col), pa.int64()).fill_null(0),
                  "rtt_us": rtt})
    out = t.group_by("key", use_threads=False).aggregate([("retrans", "sum"),
                                                          ("rtt_us", "mean")])
    return out.rename_columns([c.removesuffix("_sum").removesuffix("_mean")
                               for c in out.column_names])


def device_table(block: pa.Table | None, window_s: float) -> pa.Table | None:
    """Per device from the `block` table: ops/s, read/write MB/s and request latency, or
    None when there is no block table (the view then says why).

    Uses whichever of BLOCK_KEY_COLS names the device, and `lat_hist` (log2 ns buckets, as
    io) for percentiles; missing counters count as zero.
    """
    if block is None:
        return None
    key = next((c for c in BLOCK_KEY_COLS if c in block.column_names), None)
    if key is None:
        return None
    n = block.num_rows
    cols: dict[str, Any] = {"key": pc.cast(block.column(key), pa.string()).fill_null("?"),
                            "op": (pc.cast(block.column("op"), pa.string()).fill_null("other")
                                   if "op" in block.column_names
                                   else pa.array(["other"] * n, pa.string()))}
    for name in ("count", "bytes", "lat_sum_ns", "lat_max_ns", "errors"):
        cols[name] = (pc.cast(block.column(name), pa.int64()).fill_null(0)
                      if name in block.column_names else pa.array(np.zeros(n, np.int64)))
    for name in ("lat_hist", "size_hist"):
        cols[name] = (block.column(name) if name in block.column_names
                      else pa.array([[]] * n, pa.list_(pa.int64())))
    return hot_table(pa.table(cols), ["key"], window_s)


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
        max_rows: io rows kept for the verdicts; older intervals are dropped first (their
            sparkline sums stay), so 20k rows/s keeps ~20 s, about 200 MB, not 60 s.
    """

    def __init__(self, meta: CaptureMeta, size: int = 60, rate_intervals: int = 1,
                 max_rows: int = 400_000) -> None:
        self.meta = meta
        self.size = size
        self.rate_intervals = max(1, rate_intervals)
        self.max_rows = max_rows
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
        rows = sum(i.table("io").num_rows for i in self.intervals)
        while rows > self.max_rows and len(self.intervals) > self.rate_intervals:
            rows -= self.intervals.popleft().table("io").num_rows
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
        prep = prepare(io)  # histogram matrices once, shared by the three roll-ups
        procs_t = process_table(io, rate_s, prep)
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
            recent_io=io, processes=procs_t,
            files=file_table(io, rate_s, opts.file_group, prep),
            peers=peer_table(io, rate_s, tcp, prep),
            devices=device_table(self.table("block", self.rate_intervals), rate_s),
            procs=dict(self.procs), spark_pids=pids,
            spark=spark_series(self.pid_bytes, pids),
            window={n: t for n in _table_names(self.intervals)
                    if (t := self.table(n)) is not None},
            window_s=sum(iv.interval_s for iv in self.intervals),
            file_group=opts.file_group, has_tcp=tcp is not None,
            ipc=loader_ipc(io, self.table("events", self.rate_intervals), self.procs, rate_s),
            **state)


_local = threading.local()


def loader_ipc(io: pa.Table, events: pa.Table | None, procs: dict[int, ProcInfo],
               window_s: float) -> dict[int, dict[str, float]]:
    """trainer pid -> {objects_s, ipc_share, objects_per_batch} of its DataLoader IPC over
    `io` (the rate window): the reduction of the ipc-overhead rule (analysis/rules/ipc.py),
    run only when the window holds shared-memory segments (one DuckDB connection per thread,
    reused, as the verdicts do)."""
    if io.num_rows == 0 or not pc.any(pc.starts_with(
            io.column("resource").fill_null(""), "/dev/shm/")).as_py():
        return {}
    from iolens.analysis.engine import DuckDBEngine
    from iolens.analysis.queries import Reduced
    from iolens.analysis.rules.ipc import loaders

    tables = {"io": io} | ({"events": events} if events is not None else {})
    eng = DuckDBEngine.from_tables(tables, getattr(_local, "engine", None))
    _local.engine = eng
    parents = {p: i.ppid for p, i in procs.items() if i.ppid is not None}
    try:
        found = loaders(Reduced(eng), lambda _p: window_s, parents)
    finally:
        eng.release()
    return {ld.trainer: {"objects_s": ld.objects / max(window_s, 1e-9),
                         "ipc_share": ld.ipc_share,
                         "objects_per_batch": ld.objects_per_batch} for ld in found}


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


def block_reason(meta: CaptureMeta) -> str:
    """Why there is no block-layer data, from `meta.probes_skipped`."""
    for name, why in (meta.probes_skipped or {}).items():
        if "block" in name:
            return f"{name}: {why}"
    return "no block probe attached" if meta.probes_attached else "no probe information"
