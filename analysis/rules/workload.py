"""Workload-shape rules: imbalance (one peer much slower/busier) and data-starvation (the
trainer waiting on its data workers).

In: `Ctx` (`ops` reduction, process info from `procs`). Out: Findings.

Waiting on peers = reads on pipes and receives on unix sockets, which the verdict never counts
as I/O: it is idle time spent for someone else's I/O or compute. (Waits inside poll/select are
not traced by the syscalls probe, so a trainer that polls its queue shows less wait than it had.)
"""

from __future__ import annotations

import statistics

import pyarrow as pa
import pyarrow.compute as pc
from iolens.analysis.rules import Finding
from iolens.analysis.rules._common import (
    Ctx,
    blocked_io,
    rnd,
    role_key,
    sum_by,
    top_rows,
    total,
)

IO_KINDS = ("file", "device", "socket")


def wait_on_peers(ctx: Ctx) -> pa.Table:
    """Per-resource rows that are waits on other local processes: reads from pipes, receives
    on unix sockets (torch's DataLoader passes tensors' shared-memory fds over them)."""
    r = ctx.resources()
    if r.num_rows == 0:
        return r
    pipe = pc.and_(pc.equal(r.column("kind"), "pipe"),
                   pc.is_in(r.column("op"), pa.array(["read", "recv", "other"])))
    unix = pc.and_(pc.and_(pc.equal(r.column("kind"), "socket"),
                           pc.starts_with(r.column("resource"), "unix:")),
                   pc.equal(r.column("op"), "recv"))
    return r.filter(pc.or_(pipe, unix))


def imbalance(ctx: Ctx) -> list[Finding]:
    """A process much more blocked in I/O than its peers (same role, else same comm)."""
    th, out = ctx.th, []
    nbytes = {r["pid"]: r["bytes"] for r in
              sum_by(ctx.ops(pc.field("kind").isin(list(IO_KINDS))), ["pid"],
                     ["bytes"]).to_pylist()}
    # idle waits (accept, unix sockets) are not work: same definition as the verdict
    per = [{**r, "bytes": nbytes.get(r["pid"], 0)} for r in blocked_io(ctx).to_pylist()]
    groups: dict[str, list[dict]] = {}
    for r in per:
        groups.setdefault(role_key(ctx.procs.get(r["pid"], {})), []).append(r)
    for key, members in groups.items():
        if len(members) < 2:
            continue
        times = [m["lat_sum_ns"] / 1e9 for m in members]
        worst = max(members, key=lambda m: m["lat_sum_ns"])
        t_max, t_min, t_med = max(times), min(times), statistics.median(times)
        excess = t_max - t_med
        if excess < th["imbalance_time_share"] * ctx.wall_s or \
                (t_max - t_min) < th["imbalance_ratio"] * t_max:
            continue
        b_med = statistics.median(m["bytes"] for m in members)
        if b_med > 0 and worst["bytes"] <= 1.5 * b_med:
            continue  # same work, more time: a slower path (slow_path), not more work
        res = _top_resource(ctx, worst["pid"])
        out.append(Finding(
            code="WL-IMBALANCE", category="imbalance", severity="",
            title=f"pid {worst['pid']} blocked {t_max:.1f} s vs a median {t_med:.1f} s "
                  f"among {len(members)} {key} peers",
            culprit=ctx.culprit(worst["pid"], res), impact_s=excess,
            evidence={"peers": len(members), "max_s": rnd(t_max), "median_s": rnd(t_med),
                      "min_s": rnd(t_min), "ratio": rnd((t_max - t_min) / max(t_max, 1e-9)),
                      "bytes_worst": int(worst["bytes"]),
                      "bytes_median": int(statistics.median(m["bytes"] for m in members))},
            recommendation=("Balance the work: give the slow peer less data or a faster "
                            "path (check its device/link), shard by bytes rather than file "
                            "count, or enable work stealing / dynamic sharding.")))
    return out


def _top_resource(ctx: Ctx, pid: int) -> str | None:
    r = ctx.resources(pc.equal(pc.field("pid"), pid) & pc.field("kind").isin(list(IO_KINDS))
                      & pc.invert(pc.field("op").isin(["accept", "poll"]))
                      & pc.invert(pc.starts_with(pc.field("resource"), "unix:")))
    top = top_rows(sum_by(r, ["resource"], ["lat_sum_ns"]), "lat_sum_ns", 1) if r.num_rows \
        else []
    return top[0]["resource"] if top else None


def _parents(ctx: Ctx) -> dict[int, list[int]]:
    """Processes with children in the capture (trainer -> its DataLoader workers)."""
    kids: dict[int, list[int]] = {}
    for pid, info in ctx.procs.items():
        ppid = info.get("ppid")
        if ppid is not None and ppid in ctx.procs:
            kids.setdefault(ppid, []).append(pid)
    for pid, info in ctx.procs.items():
        if info.get("role") == "trainer" and pid not in kids:
            workers = [p for p, i in ctx.procs.items() if i.get("role") == "dataloader"]
            if workers:
                kids[pid] = workers
    return kids


def data_starvation(ctx: Ctx) -> list[Finding]:
    """The main process spends much of its time waiting for data from its workers."""
    th, out = ctx.th, []
    waits = wait_on_peers(ctx)
    for parent, kids in _parents(ctx).items():
        w = waits.filter(pc.equal(waits.column("pid"), parent)) if waits.num_rows else waits
        wait_s = total(w, "lat_sum_ns") / 1e9
        wall = ctx.pid_wall(parent)
        if wait_s < th["data_wait_fraction"] * wall:
            continue
        kid_ops = ctx.ops(pc.field("pid").isin(kids) & pc.field("kind").isin(list(IO_KINDS)))
        kid_io = total(kid_ops, "lat_sum_ns") / 1e9
        res = None
        for k in kids:
            res = res or _top_resource(ctx, k)
        out.append(Finding(
            code="WL-STARVED", category="data-starvation", severity="",
            title=f"{ctx.culprit(parent)['comm'] or parent} waited {wait_s:.1f} s "
                  f"({wait_s / wall:.0%}) for data from {len(kids)} worker(s)",
            culprit=ctx.culprit(parent, res,
                                role=ctx.procs.get(parent, {}).get("role") or "trainer"),
            impact_s=min(wait_s, wall),
            evidence={"wait_s": rnd(wait_s), "wall_s": rnd(wall), "wait_share": rnd(wait_s / wall),
                      "workers": len(kids), "workers_io_s": rnd(kid_io),
                      "workers_io_share": rnd(kid_io / max(len(kids) * wall, 1e-9))},
            recommendation=("The trainer is starved: raise DataLoader num_workers and "
                            "prefetch_factor, use persistent_workers=True, make per-sample "
                            "loading cheaper (pre-decoded shards), and see the workers' own "
                            "I/O findings for why each sample is slow.")))
    return out


RULES = (imbalance, data_starvation)
