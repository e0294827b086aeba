"""Rules that follow the wait: straggler ranks, clients waiting on a busy local peer, and the
credit of a client's waiting to the finding of the process it waited for.

In: `Ctx`, the wait-for graph (analysis/waitgraph.py), the `cpu` reduction (on-CPU seconds
per process). Out: Findings; `credit_waits` rewrites other rules' findings (pure: returns a
new list).

- straggler (imbalance, WL-STRAGGLER): among the ranks of a job, the one everyone waits for
  is the one that computes while they wait: most on-CPU time, the others mostly off-CPU.
  Links are judged apart (network_link): a straggler leaves every RTT healthy.
- peer compute (imbalance, WAIT-PEER-CPU): a client waited on a local process that spent
  that time on a CPU, not in I/O.
- credit: a client's wait on a local process whose own time went to I/O is that process's
  finding: the finding's impact becomes at least the wait, with the waiters as evidence.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import replace

from iolens.analysis import waitgraph
from iolens.analysis.ranks import rank_pids
from iolens.analysis.rules import Finding
from iolens.analysis.rules._common import Ctx, blocked_io, rnd

#: categories a holder's own finding may have to take a client's wait as its impact
IO_CATEGORIES = ("small-io", "metadata-heavy", "sync-stall", "random-access", "slow-device",
                 "cache-miss", "mmap-fault-io")


def _followed_waits(ctx: Ctx) -> Iterator[tuple[waitgraph.Edge, int, waitgraph.Activity,
                                                 list[int]]]:
    """(edge, root pid, root's activity, chain) for each client's wait on a local process that
    is long enough to follow (>= peer_wait_share of the waiter's wall time)."""
    graph = waitgraph.build(ctx)
    io = {r["pid"]: r["lat_sum_ns"] / 1e9 for r in blocked_io(ctx).to_pylist()}
    for e in graph.client_edges():
        if e.wait_s >= ctx.th["peer_wait_share"] * ctx.pid_wall(e.waiter):
            yield (e, *waitgraph.root_of(ctx, graph, e.holder, io))


def straggler(ctx: Ctx) -> list[Finding]:
    """The rank that computes while the others wait (needs the cpu table)."""
    th = ctx.th
    cpu = waitgraph.build(ctx).cpu
    ranks = sorted(rank_pids(ctx.procs))
    if cpu is None or len(ranks) < 2:
        return []
    share = {p: cpu.get(p, 0.0) / ctx.pid_wall(p) for p in ranks}
    slow = max(ranks, key=lambda p: (share[p], -p))
    others = [share[p] for p in ranks if p != slow]
    med = statistics.median(others)
    if share[slow] - med < th["straggler_cpu_share"] or share[slow] < th["straggler_ratio"] * med:
        return []
    wall = ctx.pid_wall(slow)
    impact = (share[slow] - med) * wall  # what the others waited beyond their own compute
    info = ctx.procs.get(slow, {})
    rank = info.get("rank")
    who = f"rank {rank}" if rank is not None else f"pid {slow}"
    return [Finding(
        code="WL-STRAGGLER", category="imbalance", severity="",
        title=f"{who} is the straggler: on a CPU {share[slow]:.0%} of the time while the "
              f"other {len(others)} rank(s) were on a CPU a median {med:.0%} (waiting for it)",
        culprit=ctx.culprit(slow, role="rank"), impact_s=impact,
        evidence={"rank": rank, "cpu_share": rnd(share[slow]), "peers_cpu_share": rnd(med),
                  "cpu_s": rnd(cpu.get(slow, 0.0)), "ranks": len(ranks),
                  "peers": {str(p): rnd(share[p]) for p in ranks if p != slow}},
        recommendation=("One rank computes longer per step and the rest wait for it in every "
                        "collective: balance the work per rank (sequence lengths, shard "
                        "sizes), check that rank's CPU/GPU (throttling, a noisy neighbour, "
                        "a slower device), or its data loading."))]


def peer_compute(ctx: Ctx) -> list[Finding]:
    """Clients that waited on a local process which spent that time computing."""
    out = []
    for e, root, act, chain in _followed_waits(ctx):
        if act.main != "cpu":
            continue
        out.append(Finding(
            code="WAIT-PEER-CPU", category="imbalance", severity="",
            title=f"pid {e.waiter} waited {e.wait_s:.1f} s on pid {root}, which was computing "
                  f"({act.cpu_s:.1f} s on a CPU)",
            culprit=ctx.culprit(root), impact_s=e.wait_s,
            evidence={"waiter": e.waiter, "via": e.resource, "wait_s": rnd(e.wait_s),
                      "holder_cpu_s": rnd(act.cpu_s or 0.0), "holder_io_s": rnd(act.io_s),
                      "chain": chain},
            recommendation=("The process waited for is CPU-bound, not I/O-bound: give it "
                            "more CPUs or workers, or make its work per request cheaper.")))
    return out


def credit_waits(ctx: Ctx, found: list[Finding]) -> list[Finding]:
    """Credit each client's wait on a local process to that process's own top I/O finding
    (followed through processes that themselves mostly wait)."""
    out = list(found)
    for e, root, _act, chain in _followed_waits(ctx):
        mine = [i for i, f in enumerate(out)
                if f.culprit.get("pid") == root and f.category in IO_CATEGORIES]
        if not mine:
            continue
        i = max(mine, key=lambda k: out[k].impact_s)
        f = out[i]
        waited = list(f.evidence.get("waited_on_by", []))
        waited.append({"pid": e.waiter, "comm": ctx.procs.get(e.waiter, {}).get("comm"),
                       "via": e.resource, "wait_s": rnd(e.wait_s), "chain": chain})
        out[i] = replace(f, impact_s=max(f.impact_s, e.wait_s),
                         evidence={**f.evidence, "waited_on_by": waited})
    return out


RULES = (straggler, peer_compute)
