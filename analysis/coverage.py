"""How much of what the workload did the capture saw: said before any conclusion.

In: the reductions (`health`, `grains`, `intervals`) and the capture's metadata. Out: a
`Coverage` with the share of operations not counted (kernel map full), events lost, ops
whose file or peer has no name, intervals stretched past 1.2x their length, and the share of
ops counted only per directory or process (exact, but coarser).

`complete` is False when any loss is above the thresholds `coverage_max_uncounted` /
`coverage_max_stretched`: the verdict then says so first, and never prints a confident
"not I/O-bound" on top of it (the missing share could be exactly where the time went).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Coverage:
    complete: bool = True
    ops_counted: int = 0
    ops_uncounted: int = 0           # kernel map full: not counted anywhere
    uncounted_share: float = 0.0     # of all ops (counted + uncounted)
    lost_events: int = 0             # per-event records (opens, slow ops) lost
    newfile_lost: int = 0            # new files whose path never arrived
    unresolved_ops: int = 0          # counted ops whose file/peer has no name
    folded_share: float = 0.0        # ops counted per directory or process, not per file
    intervals: int = 0
    stretched_intervals: int = 0     # longer than 1.2x the recording interval
    max_interval_s: float | None = None
    event_backlog: int = 0           # poll cycles that stopped at the event budget
    reasons: tuple[str, ...] = ()    # why incomplete, one clause each

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["capture_complete"] = d.pop("complete")
        d["reasons"] = list(self.reasons)
        for k in ("uncounted_share", "folded_share"):
            d[k] = round(d[k], 4)
        return d


def _int(row: dict[str, Any], key: str) -> int:
    return int(row.get(key) or 0)


def measure(reduced: Any, th: dict[str, float]) -> Coverage:
    """Coverage of one capture (or fleet tree) from its health table and io grains; computed
    once per reductions (the verdict and the health summary both ask)."""
    cache = getattr(reduced, "_cache", None)
    if cache is not None and "_coverage" in cache:
        return cache["_coverage"]
    cov = _measure(reduced, th)
    if cache is not None:
        cache["_coverage"] = cov
    return cov


def _measure(reduced: Any, th: dict[str, float]) -> Coverage:
    h = reduced.get("health")
    row = h.to_pylist()[0] if h is not None and h.num_rows else {}
    grains = reduced.get("grains")
    by_grain = dict(zip(grains.column("grain").to_pylist(),
                        [int(x or 0) for x in grains.column("ops").to_pylist()])) \
        if grains is not None else {}
    counted = sum(by_grain.values())
    uncounted = _int(row, "agg_overflow")
    total = counted + uncounted
    cov = Coverage(
        ops_counted=counted, ops_uncounted=uncounted,
        uncounted_share=uncounted / total if total else 0.0,
        lost_events=_int(row, "lost_events"), newfile_lost=_int(row, "newfile_lost"),
        unresolved_ops=_int(row, "unresolved_ops"),
        folded_share=(by_grain.get("dir", 0) + by_grain.get("proc", 0)) / counted
        if counted else 0.0,
        intervals=_int(row, "intervals"), max_interval_s=row.get("max_interval_s"),
        event_backlog=_int(row, "event_backlog"))
    target = getattr(reduced.meta, "interval_s", None) or row.get("median_interval_s")
    if target and h is not None:
        from iolens.analysis.queries import stretched_sql

        got = reduced.engine.query(stretched_sql(reduced.engine, float(target)))
        cov.stretched_intervals = int(got.column("n")[0].as_py() or 0)
    cov.reasons = tuple(_reasons(cov, th))
    cov.complete = not cov.reasons
    return cov


def of_window(health: Any, io_ops: int, target_s: float, th: dict[str, float]) -> Coverage:
    """Coverage of a live window: its health rows (a pyarrow Table of schema `health`) and
    the ops its io rows count (the dashboard's verdict panel)."""
    import pyarrow.compute as pc

    def total(col: str) -> int:
        if health is None or col not in health.column_names:
            return 0
        return int(pc.sum(health.column(col)).as_py() or 0)

    uncounted = total("agg_overflow")
    n = health.num_rows if health is not None else 0
    lengths = health.column("interval_s").to_pylist() if n else []
    cov = Coverage(ops_counted=io_ops, ops_uncounted=uncounted,
                   uncounted_share=uncounted / (io_ops + uncounted) if io_ops + uncounted else 0.0,
                   lost_events=total("lost_events"), newfile_lost=total("newfile_lost"),
                   unresolved_ops=total("unresolved_ops"), intervals=n,
                   stretched_intervals=sum(1 for x in lengths if x > 1.2 * target_s),
                   max_interval_s=max(lengths) if lengths else None,
                   event_backlog=total("event_backlog"))
    cov.reasons = tuple(_reasons(cov, th))
    cov.complete = not cov.reasons
    return cov


def _reasons(c: Coverage, th: dict[str, float]) -> list[str]:
    out = []
    if c.uncounted_share > th["coverage_max_uncounted"]:
        out.append(f"{c.uncounted_share:.0%} of operations were not counted "
                   f"({c.ops_uncounted:,}: kernel map full)")
    if c.intervals and c.stretched_intervals / c.intervals > th["coverage_max_stretched"]:
        out.append(f"{c.stretched_intervals} of {c.intervals} intervals ran long (up to "
                   f"{c.max_interval_s:.1f} s): the collector fell behind")
    if c.ops_counted and c.unresolved_ops / c.ops_counted > th["coverage_max_uncounted"]:
        out.append(f"{c.unresolved_ops / c.ops_counted:.0%} of operations have no file or "
                   "peer name (paths lost)")
    return out


def headline(c: Coverage) -> str:
    """The one line said before the verdict when the capture is incomplete ('' if not)."""
    if c.complete:
        return ""
    return "INCOMPLETE CAPTURE: " + "; ".join(c.reasons) + \
        " - the conclusions below may miss where the time went"
