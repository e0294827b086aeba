"""Bottleneck rules: pure functions over capture tables -> findings.

API (used by `iolens analyze` and the TUI's verdict panel alike):
    run_rules(tables, meta=None, thresholds=None) -> list[Finding]   (sorted by impact_s)
    evaluate(reduced, thresholds) -> (Verdict, list[Finding])        (what analyze uses)

Each rule (rules/fileio.py, memory.py, network.py, workload.py; fleet.py across hosts) is
``rule(ctx) -> list[Finding]`` over the shared SQL reductions of analysis/queries.py.
Severity is decided here, once: high when impact >= high_impact_fraction of wall time, warn
from warn_impact_fraction, else info; when the verdict says the run is not I/O-bound nothing is
high (data-starvation and ipc-overhead are judged on the trainer's wait instead).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

CATEGORIES = ("small-io", "metadata-heavy", "sync-stall", "random-access", "slow-device",
              "cache-miss", "mmap-fault-io", "network-latency", "network-bandwidth",
              "network-loss", "imbalance", "data-starvation", "ipc-overhead", "worker-startup",
              "fd-exhaustion")
SEVERITIES = ("high", "warn", "info")
_local = threading.local()


@dataclass(frozen=True)
class Finding:
    """One attributed bottleneck (the JSON contract of `iolens analyze --json`)."""

    code: str
    category: str
    severity: str  # high | warn | info
    title: str
    culprit: dict[str, Any] = field(default_factory=dict)  # pid, comm, role, resource
    impact_s: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)
    recommendation: str = ""


def all_rules() -> tuple:
    """Every rule function, in a stable order (imported late: rule modules import Finding)."""
    from iolens.analysis.rules import causal, fileio, fleet, ipc, memory, network, workload
    return fileio.RULES + memory.RULES + network.RULES + workload.RULES + causal.RULES + \
        fleet.RULES + ipc.RULES


def assign_severity(f: Finding, wall_s: float, io_bound: bool, starved: bool,
                    th: dict[str, float]) -> Finding:
    """Severity from impact share of wall time, capped by the verdict (see module doc)."""
    if f.severity:  # a rule that already knows (e.g. "info" for missing data)
        return f
    share = f.impact_s / wall_s if wall_s > 0 else 0.0
    sev = "high" if share >= th["high_impact_fraction"] else \
        "warn" if share >= th["warn_impact_fraction"] else "info"
    # a trainer starved by its loader's own IPC is not I/O-bound either: same gate as starvation
    gate = starved if f.category in ("data-starvation", "ipc-overhead") else io_bound
    if sev == "high" and not gate:
        sev = "warn"
    return replace(f, severity=sev, impact_s=round(min(f.impact_s, wall_s or f.impact_s), 4))


def _link_waits(verdict: Any, found: list[Finding], wall_s: float,
                th: dict[str, float]) -> None:
    """Waits the syscall times cannot show (non-blocking sockets wait in epoll) still make a
    run I/O-bound when a slow link was measured (RTT/retransmits: NET-LINK-*) and its
    participants waited long enough; the summary says so."""
    links = [f for f in found if f.code.startswith("NET-LINK")]
    wait = max((f.impact_s for f in links), default=0.0)
    if wall_s > 0 and wait / wall_s >= th["io_bound_fraction"] and not verdict.io_bound:
        verdict.io_bound = True
        verdict.summary = (f"I/O-bound on the network: about {wait / wall_s:.0%} of the wall "
                           f"time waiting on a slow link; "
                           f"{verdict.summary.replace('not I/O-bound: ', '', 1)}")


def evaluate(reduced: Any, thresholds: dict[str, float]) -> tuple[Any, list[Finding]]:
    """Verdict and findings (sorted by impact, largest first) for one set of reductions."""
    from iolens.analysis.rules import causal
    from iolens.analysis.rules._common import Ctx
    from iolens.analysis.verdict import decide

    ctx = Ctx(reduced, thresholds)
    verdict = decide(ctx)
    starved = verdict.data_wait_fraction >= thresholds["data_wait_fraction"]
    found: list[Finding] = []
    for rule in all_rules():
        found.extend(rule(ctx))
    found = causal.credit_waits(ctx, found)
    _link_waits(verdict, found, ctx.wall_s, thresholds)
    found = [assign_severity(f, ctx.wall_s, verdict.io_bound, starved, thresholds)
             for f in found]
    found = [f for f in found if f.impact_s >= thresholds["min_impact_s"] or
             f.severity == "info" and f.code.endswith("NODATA")]
    found.sort(key=lambda f: (-f.impact_s, SEVERITIES.index(f.severity), f.code))
    return verdict, found


def run_rules(tables: dict[str, pa.Table], meta: Any = None,
              thresholds: dict[str, Any] | None = None) -> list[Finding]:
    """Evaluate every rule on `tables` (name -> pyarrow Table of collector.schema).

    `thresholds` overrides the defaults of analysis/thresholds.toml (unknown keys raise
    ThresholdError). Fast on small windows: one in-memory DuckDB connection, a few queries.
    """
    from iolens.analysis.engine import DuckDBEngine
    from iolens.analysis.queries import Reduced
    from iolens.analysis.thresholds import merge

    th = merge(thresholds)
    # one connection per thread, recycled: the TUI calls this every interval
    eng = DuckDBEngine.from_tables(tables, getattr(_local, "engine", None))
    _local.engine = eng
    try:
        _, found = evaluate(Reduced(eng, meta), th)
    finally:
        eng.release()
    return found
