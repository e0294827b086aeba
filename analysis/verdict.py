"""Is the workload I/O-bound at all? The share of wall time its processes spend blocked in I/O.

In: `Ctx`. Out: `Verdict` with io_time_fraction overall and per role (role, else comm).

Blocked in I/O = summed syscall latency on files, devices and IP sockets, plus page faults that
read mmap'd files (when the faults table is recorded). Not counted: waits on
pipes and unix sockets (waiting for a local peer: see data-starvation), accept (an idle server),
and recv of an inference server (waiting for the next request). A process's share is capped at
1 (several threads may block at once) and weighted by its wall time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from iolens.analysis import coverage
from iolens.analysis.rules._common import Ctx, blocked_io, role_key, sum_by
from iolens.analysis.rules.workload import wait_on_peers

MAIN_ROLES = ("trainer", "rank", "inference-server", "checkpoint-writer")


@dataclass
class Verdict:
    io_bound: bool | None  # None: the capture is too incomplete to say "not I/O-bound"
    io_time_fraction: float
    summary: str
    data_wait_fraction: float = 0.0
    per_role: dict[str, dict[str, Any]] = field(default_factory=dict)
    coverage: Any = None   # analysis.coverage.Coverage

    def to_json(self) -> dict[str, Any]:
        cov = self.coverage.to_json() if self.coverage is not None else None
        return {"io_bound": self.io_bound, "io_time_fraction": round(self.io_time_fraction, 4),
                "summary": self.summary, "data_wait_fraction": round(self.data_wait_fraction, 4),
                "per_role": self.per_role,
                "capture_complete": cov["capture_complete"] if cov else True,
                "coverage": cov}


def decide(ctx: Ctx) -> Verdict:
    """The verdict (see module docstring) with a one-line summary."""
    th = ctx.th
    per = {r["pid"]: r["lat_sum_ns"] / 1e9 for r in blocked_io(ctx).to_pylist()}
    waits = {r["pid"]: r["lat_sum_ns"] / 1e9 for r in
             sum_by(wait_on_peers(ctx), ["pid"], ["lat_sum_ns"]).to_pylist()}
    roles: dict[str, list[float]] = {}
    tot_io = tot_wall = 0.0
    for pid, info in _substantial(ctx).items():
        wall = ctx.pid_wall(pid)
        io = min(per.get(pid, 0.0), wall)
        r = roles.setdefault(role_key(info), [0.0, 0.0, 0.0, 0.0])
        r[0] += io
        r[1] += wall
        r[2] += min(waits.get(pid, 0.0), wall)
        r[3] += 1
        tot_io += io
        tot_wall += wall
    per_role = {k: {"io_time_fraction": round(v[0] / max(v[1], 1e-9), 4),
                    "wait_fraction": round(v[2] / max(v[1], 1e-9), 4),
                    "processes": int(v[3]), "wall_s": round(v[1], 3)} for k, v in roles.items()}
    frac = tot_io / tot_wall if tot_wall else 0.0
    main = [v["io_time_fraction"] for k, v in per_role.items() if k in MAIN_ROLES]
    data_wait = max([v["wait_fraction"] for v in per_role.values()] or [0.0])
    io_bound = frac >= th["io_bound_fraction"] or any(m >= th["io_bound_fraction"] for m in main)
    cov = coverage.measure(ctx.reduced, th)
    summary = _summary(io_bound, frac, per_role, data_wait, th)
    if not cov.complete:
        # what was not seen may be exactly where the time went: never "not I/O-bound" here
        summary = coverage.headline(cov) + ". " + (
            summary if io_bound else "Seen: " + summary.replace("not I/O-bound: ", "", 1))
    return Verdict(io_bound if (io_bound or cov.complete) else None, frac, summary,
                   data_wait, per_role, cov)


def _substantial(ctx: Ctx) -> dict[int, dict[str, Any]]:
    """Processes that lived at least a tenth of the capture: short helpers (shell wrappers,
    pyenv shims, `ip` calls) would otherwise outweigh the workload by their number."""
    floor = 0.1 * ctx.wall_s
    keep = {p: i for p, i in ctx.procs.items() if ctx.pid_wall(p) >= floor}
    return keep or ctx.procs


def _summary(io_bound: bool, frac: float, per_role: dict, data_wait: float,
             th: dict[str, float]) -> str:
    if not per_role:
        return "no I/O recorded for any process"
    worst = max(per_role.items(), key=lambda kv: kv[1]["io_time_fraction"])
    head = (f"I/O-bound: processes spend {frac:.0%} of their wall time blocked in I/O"
            if io_bound else
            f"not I/O-bound: processes spend {frac:.0%} of their wall time blocked in I/O")
    tail = f"; most: {worst[0]} at {worst[1]['io_time_fraction']:.0%}"
    if data_wait >= th["data_wait_fraction"]:
        tail += f"; a process waits {data_wait:.0%} of its time on its data workers"
    return head + tail
