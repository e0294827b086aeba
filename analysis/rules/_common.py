"""What every rule shares: the context it reads, culprit naming, impact in wall seconds.

A rule is ``rule(ctx: Ctx) -> list[Finding]``; it reads small reduced tables from
`ctx.reduced` (analysis/queries.py) and thresholds from `ctx.th`, and never prints.
Severity is left "" by rules and decided in one place (`rules.assign_severity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from iolens.analysis import waitgraph
from iolens.analysis.metrics import hist_quantiles
from iolens.analysis.queries import Reduced
from iolens.collector.schema import LAT_BUCKETS

META_OPS = ("open", "close", "stat")
FILE_KINDS = ("file", "device")


@dataclass
class Ctx:
    """Inputs of a rule: the reductions, the thresholds, and facts derived once."""

    reduced: Reduced
    th: dict[str, float]

    @property
    def wall_s(self) -> float:
        return self.reduced.wall_s

    @property
    def procs(self) -> dict[int, dict[str, Any]]:
        return self.reduced.procs_info()

    def culprit(self, pid: int | None = None, resource: str | None = None,
                role: str | None = None, comm: str | None = None) -> dict[str, Any]:
        """The contract's culprit dict, filling comm/role from what is known of `pid`; on a
        tree of several hosts also `host`."""
        p = self.procs.get(pid, {}) if pid is not None else {}
        c = {"pid": None if pid is None else int(pid), "comm": comm or p.get("comm"),
             "role": role or p.get("role"), "resource": resource or None}
        if len(self.reduced.hosts) > 1:  # fleet tree: which host (None: pid on several)
            c["host"] = p.get("host")
        return c

    def pid_wall(self, pid: int) -> float:
        """A process's wall time in the capture (never 0, never above the capture)."""
        w = self.procs.get(pid, {}).get("wall_s")
        w = self.wall_s if w is None else w
        return max(min(w, self.wall_s or w), 1e-3)

    def ops(self, where: pa.Expression | None = None) -> pa.Table:
        """The per-(pid, op, kind, file_class) reduction, optionally filtered."""
        t = self.reduced.get("ops")
        if t is None:
            return _EMPTY_OPS
        return t.filter(where) if where is not None else t

    def hist(self, where: pa.Expression | None = None) -> np.ndarray:
        """Merged latency histogram of the (pid, op, kind) groups matching `where`."""
        t = self.reduced.get("ops_hist")
        if t is None:
            return np.zeros(LAT_BUCKETS)
        return hist_of(t.filter(where) if where is not None else t)

    def resources(self, where: pa.Expression | None = None) -> pa.Table:
        t = self.reduced.get("resources")
        if t is None:
            return _EMPTY_OPS
        return t.filter(where) if where is not None else t


_EMPTY_OPS = pa.table({"host": pa.array([], pa.string()), "pid": pa.array([], pa.int32()),
                       "op": pa.array([], pa.string()), "kind": pa.array([], pa.string()),
                       "resource": pa.array([], pa.string()),
                       "file_class": pa.array([], pa.string()),
                       **{c: pa.array([], pa.int64()) for c in
                          ("count", "bytes", "errors", "lat_sum_ns", "lat_max_ns",
                           "random_ops")}})


def field_in(name: str, values: tuple[str, ...] | list[str]) -> pa.Expression:
    return pc.field(name).isin(list(values))


def sum_by(t: pa.Table, keys: list[str], cols: list[str]) -> pa.Table:
    """Group a small table by `keys`, summing `cols` (names kept, not suffixed)."""
    if t.num_rows == 0:
        return t.select(keys + cols)
    g = t.group_by(keys, use_threads=False).aggregate([(c, "sum") for c in cols])
    return g.rename_columns([c[:-4] if c.endswith("_sum") and c[:-4] in cols else c
                             for c in g.column_names])


def hist_of(t: pa.Table) -> np.ndarray:
    """The merged latency histogram (h0..h35 columns) of all rows of an `ops_hist` slice."""
    out = np.zeros(LAT_BUCKETS, dtype=np.float64)
    for i in range(LAT_BUCKETS):
        name = f"h{i}"
        if name in t.column_names and t.num_rows:
            out[i] = pc.sum(t.column(name)).as_py() or 0
    return out


def quantile_ms(hist: np.ndarray, q: float) -> float:
    """Quantile q of one merged latency histogram, in ms (nan when empty)."""
    return float(hist_quantiles(hist.reshape(1, -1), q)[0]) / 1e6


def concurrency(t: pa.Table) -> int:
    """How many processes share this work: their blocked time overlaps, so wall impact is
    the summed time divided by this (a rough but honest estimate, documented as such)."""
    return max(1, len(set(t.column("pid").to_pylist()))) if t.num_rows else 1


def total(t: pa.Table, col: str) -> float:
    return float(pc.sum(t.column(col)).as_py() or 0) if t.num_rows else 0.0


def top_rows(t: pa.Table, col: str, n: int = 5) -> list[dict[str, Any]]:
    """The n largest rows by `col` as dicts (small evidence lists)."""
    if t.num_rows == 0:
        return []
    ties = [(c, "ascending") for c in ("pid", "resource", "op") if c in t.column_names]
    return t.sort_by([(col, "descending")] + ties).slice(0, n).to_pylist()


def rnd(x: float, nd: int = 3) -> float:
    """Round for evidence (JSON stays readable); nan -> None is done by the reporter."""
    return round(float(x), nd)


def role_key(info: dict[str, Any]) -> str:
    """Group processes by role, else by comm: the peers an imbalance is judged among."""
    return info.get("role") or f"comm:{info.get('comm') or '?'}"


def blocked_io_rows(ctx: Ctx) -> pa.Table:
    """The `resources` rows (host, pid, op, kind, resource) that count as blocked in I/O:
    files, devices and IP sockets to other hosts; not accept, not waits in poll/epoll, not
    unix sockets, not connections to a local process (loopback or the host's own address:
    waiting for that process, see analysis/waitgraph.py), not an inference server's recv
    (its idle wait for requests)."""
    r = ctx.resources()
    if r.num_rows == 0:
        return r
    keep = pc.is_in(r.column("kind"), pa.array(["file", "device", "socket"]))
    keep = pc.and_(keep, pc.invert(pc.is_in(r.column("op"), pa.array(["accept", "poll"]))))
    local = local_peer_mask(ctx, r)
    if local is not None:  # waits on local processes are theirs to explain (waitgraph)
        keep = pc.and_(keep, pc.invert(local))
    keep = pc.and_(keep, pc.invert(pc.starts_with(r.column("resource"), "unix:")))
    servers = [p for p, i in ctx.procs.items() if i.get("role") == "inference-server"]
    if servers:
        idle = pc.and_(pc.is_in(r.column("pid"), pa.array(servers, r.schema.field("pid").type)),
                       pc.equal(r.column("op"), "recv"))
        keep = pc.and_(keep, pc.invert(idle))
    return r.filter(keep)


def local_peer_mask(ctx: Ctx, r: pa.Table) -> pa.Array | None:
    """True for `resources` rows on a connection whose other end is on this host."""
    local = waitgraph.build(ctx).local_pairs()
    if not local:
        return None
    # candidates by resource first (vectorised): resources tables can have a row per file
    cand = pc.fill_null(pc.is_in(r.column("resource"),
                                 pa.array(sorted({res for _, res in local}))), False)
    idx = np.flatnonzero(np.asarray(cand))
    mask = np.zeros(r.num_rows, dtype=bool)
    if len(idx):
        pids = r.column("pid").take(pa.array(idx)).to_pylist()
        res = r.column("resource").take(pa.array(idx)).to_pylist()
        mask[idx] = [(p, x) in local for p, x in zip(pids, res, strict=True)]
    return pa.array(mask)


def blocked_io(ctx: Ctx) -> pa.Table:
    """Per-pid nanoseconds blocked in I/O, as the verdict counts it (analysis/verdict.py):
    files, devices and IP sockets (not accept, not unix sockets, not an inference server's
    recv), plus page-fault I/O when the faults table is recorded. Computed once per set of
    reductions: the verdict, the summary and several rules all ask."""
    cache = ctx.reduced._cache
    if "_blocked_io" not in cache:
        cache["_blocked_io"] = _blocked_io(ctx)
    return cache["_blocked_io"]


def _blocked_io(ctx: Ctx) -> pa.Table:
    r = blocked_io_rows(ctx)
    if r.num_rows == 0:
        return pa.table({"pid": pa.array([], pa.int32()), "lat_sum_ns": pa.array([], pa.int64())})
    per = sum_by(r, ["pid"], ["lat_sum_ns"])
    faults = ctx.reduced.get("faults")
    if faults is not None and faults.num_rows:
        # page faults that read mmap'd files block the process just like read() does
        f = faults.select(["pid", "lat_sum_ns"])
        f = f.cast(pa.schema([pa.field("pid", per.schema.field("pid").type),
                              pa.field("lat_sum_ns", pa.int64())]))
        per = sum_by(pa.concat_tables([per.select(["pid", "lat_sum_ns"]), f]), ["pid"],
                     ["lat_sum_ns"])
    return per
